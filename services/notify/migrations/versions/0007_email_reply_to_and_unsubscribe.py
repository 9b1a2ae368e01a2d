"""email reply-to and one-click unsubscribe on notifications

GOV.UK Notify's ``email_reply_to_id`` and ``one_click_unsubscribe_url`` are honoured:
the chosen reply-to address and the unsubscribe link travel with the notification to
the provider (a Reply-To header; List-Unsubscribe with List-Unsubscribe-Post).  Both
nullable: rows written before have neither, and are sent as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 07:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (nullable, no default): instant on PostgreSQL, native on SQLite
    op.add_column("notifications", sa.Column("reply_to", sa.String(320), nullable=True))
    op.add_column("notifications", sa.Column("unsubscribe_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:    # SQLite cannot drop in place
        batch.drop_column("unsubscribe_url")
        batch.drop_column("reply_to")
