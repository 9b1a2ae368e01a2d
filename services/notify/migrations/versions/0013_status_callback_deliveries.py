"""status callback deliveries

Delivery-status callbacks to a tenant's URL are recorded in the transaction that
handles the outcome and sent after it commits (services/notify/status_callbacks.py):
one row per (notification, status), with its attempts and next attempt; a partial
index holds only the rows still to be sent.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 17:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

PENDING = "delivered_at IS NULL AND given_up_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "status_callbacks",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("notification_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("given_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
    )
    op.create_index("ix_status_callbacks_due", "status_callbacks", ["next_attempt_at"],
                    unique=False, postgresql_where=sa.text(PENDING),
                    sqlite_where=sa.text(PENDING))


def downgrade() -> None:
    op.drop_index("ix_status_callbacks_due", table_name="status_callbacks")
    op.drop_table("status_callbacks")
