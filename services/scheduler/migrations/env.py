"""Alembic environment for the scheduler service's schema."""
from services.scheduler.models import metadata
from shared.migrate import run_migrations

run_migrations("scheduler", metadata)
