"""appointment reference and reply code on a notification

An appointment reminder carries the board's reference and the reply code
("CANSLO 4821") from the scheduler's ``notification.requested`` to the
``notification.sent`` inbound keeps as the context of a reply.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notifications') as batch_op:
        batch_op.add_column(sa.Column('appointment_reference', sa.String(length=100),
                                      nullable=True))
        batch_op.add_column(sa.Column('reply_code', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notifications') as batch_op:
        batch_op.drop_column('reply_code')
        batch_op.drop_column('appointment_reference')
