"""campaign fragments by language

The scheduler holds no templates: a campaign's cost and capacity used the fragment
count the team typed in.  Now notify answers each language's real count (Welsh,
English, and both for a recipient whose language is unknown) when the campaign is set
up or changed, and it is kept here for the planner.  Nullable: a campaign made before,
or while notify did not answer, keeps its typed figure as the fallback.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("fragments_by_language", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:    # SQLite cannot drop in place
        batch.drop_column("fragments_by_language")
