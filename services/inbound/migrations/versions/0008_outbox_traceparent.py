"""outbox traceparent

An outbox row keeps the W3C ``traceparent`` of the request or event that wrote it;
the relay sends it in the message's headers, so the consumers' spans join its trace.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("traceparent", sa.String(64)))


def downgrade() -> None:
    op.drop_column("outbox", "traceparent")
