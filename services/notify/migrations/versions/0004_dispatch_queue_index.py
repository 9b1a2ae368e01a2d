"""dispatch queue index

The dispatcher's queue: the ``created`` rows of each tenant, urgent first, oldest
first.  A partial index holds only those rows, so finding the tenants with work (a
skip scan) and each tenant's next share (an ordered range) read the queue, not the
table, however many rows a bin night has already sent.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 21:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

CREATED = sa.text("status = 'created'")


def upgrade() -> None:
    op.create_index("ix_notifications_queue", "notifications",
                    ["tenant_id", sa.text("urgent DESC"), "created_at"],
                    postgresql_where=CREATED, sqlite_where=CREATED)


def downgrade() -> None:
    op.drop_index("ix_notifications_queue", table_name="notifications")
