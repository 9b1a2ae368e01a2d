"""Alembic environment for the inbound service's schema."""
from services.inbound.models import metadata
from shared.migrate import run_migrations

run_migrations("inbound", metadata)
