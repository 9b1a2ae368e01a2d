"""outbox unpublished index

The relay's claim, ``WHERE published_at IS NULL ORDER BY seq LIMIT 500``, had two
plans and both grew with the table: walk the primary key past every published row
(kept 24 hours), or fetch every unpublished row and sort it.  A bin night leaves a
million of each, and the claim took 0.1-0.7 s a batch at 1,000,000 subscribers.  A
partial index holds only the unpublished rows in ``seq`` order: a claim reads its
batch and no more, however big the table is.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

UNPUBLISHED = sa.text("published_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_outbox_unpublished", "outbox", ["seq"],
                    postgresql_where=UNPUBLISHED, sqlite_where=UNPUBLISHED)


def downgrade() -> None:
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
