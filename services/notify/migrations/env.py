"""Alembic environment for the notify service's schema."""
from services.notify.models import metadata
from shared.migrate import run_migrations

run_migrations("notify", metadata)
