"""Alembic environment for the notify service's schema."""
from services.notify import opendata  # noqa: F401  (registers daily_figures)
from services.notify.models import metadata
from shared.migrate import run_migrations

run_migrations("notify", metadata)
