"""notification correlation id

A notification keeps the correlation id of the API request (``X-Correlation-Id``)
or the ``notification.requested`` event that made it, so the dispatcher, which
runs later in another process, puts it on every status event (``notification.sent``
...) and every log line about that notification, and a delivery receipt's events
carry it too.  Rows stored before this revision have none: their events carry none,
as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 17:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("correlation_id")
