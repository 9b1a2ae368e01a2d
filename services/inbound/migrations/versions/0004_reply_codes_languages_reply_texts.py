"""reply codes and languages in the conversation context; a tenant's reply texts

``conversations`` keeps the reply code and the language of the text a citizen
answers (both now on ``notification.sent``); ``reply_texts`` holds a tenant's
own wording of the auto-replies (``PUT /api/reply-texts``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 07:00:00
"""
from alembic import op
import sqlalchemy as sa

from shared.db import UTCDateTime


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations') as batch_op:
        batch_op.add_column(sa.Column('reply_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))
    op.create_table(
        'reply_texts',
        sa.Column('tenant_id', sa.String(length=36), nullable=False),
        sa.Column('texts', sa.JSON(), nullable=False),
        sa.Column('contact_phone', sa.String(length=32), nullable=True),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_reply_texts')),
    )


def downgrade() -> None:
    op.drop_table('reply_texts')
    with op.batch_alter_table('conversations') as batch_op:
        batch_op.drop_column('language')
        batch_op.drop_column('reply_code')
