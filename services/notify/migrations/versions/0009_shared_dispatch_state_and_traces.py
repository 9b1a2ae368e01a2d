"""shared dispatch state and trace context

Several dispatchers share each sender's throttle and each provider's circuit:
without Redis they keep them here (``throttle_buckets``, ``circuit_breakers``).
A notification and an outbox row keep the W3C ``traceparent`` of the request or
event that made them, so the provider call and the published events join its trace.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 07:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "throttle_buckets",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("rate", sa.Float, nullable=False),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("stamp", sa.Float, nullable=False),
    )
    op.create_table(
        "circuit_breakers",
        sa.Column("provider", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False, server_default="closed"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("opened_at", sa.Float, nullable=False, server_default="0"),
        sa.Column("trial_until", sa.Float, nullable=False, server_default="0"),
    )
    # plain ADD COLUMN (nullable, no default): instant on PostgreSQL and SQLite, and no
    # table copy that could lose the partial indexes
    op.add_column("notifications", sa.Column("traceparent", sa.String(64)))
    op.add_column("outbox", sa.Column("traceparent", sa.String(64)))


def downgrade() -> None:
    op.drop_column("outbox", "traceparent")
    op.drop_column("notifications", "traceparent")
    op.drop_table("circuit_breakers")
    op.drop_table("throttle_buckets")
