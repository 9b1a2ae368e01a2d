"""appointment replies: the rearrange status, and the team's list of appointments

``status`` takes ``rearrange_requested`` (a patient replied 2 or AILDREFNU), which
is longer than the 16 characters it had; ``GET /api/appointments`` lists a
tenant's appointments newest first.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 07:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('appointments') as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=16),
                              type_=sa.String(length=24), existing_nullable=False)
        batch_op.create_index('ix_appointments_tenant_created', ['tenant_id', 'created_at'])


def downgrade() -> None:
    with op.batch_alter_table('appointments') as batch_op:
        batch_op.drop_index('ix_appointments_tenant_created')
        batch_op.alter_column('status', existing_type=sa.String(length=24),
                              type_=sa.String(length=16), existing_nullable=False)
