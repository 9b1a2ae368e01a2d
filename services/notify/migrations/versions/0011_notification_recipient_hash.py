"""notification recipient hash

The console's reports find "who was sent what" by number or email address; the
recipient is encrypted at rest (0008), so a notification keeps its keyed hash beside
it, as suppressions do, with an index per tenant.  Rows stored before this revision
have no hash: they are not found by that search and leave with retention (7 days by
default), as their clear recipients do.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 08:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("recipient_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_notifications_tenant_recipient", "notifications",
                    ["tenant_id", "recipient_hash"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notifications_tenant_recipient", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("recipient_hash")
