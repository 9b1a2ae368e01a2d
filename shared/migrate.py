"""The body of every service's Alembic ``env.py``.

Migrations run online only, on the engine the caller passes in
``config.attributes["connection_engine"]`` (see :func:`shared.db.upgrade`), or
on ``HYSBYS_DATABASE_URL`` for the service when run by the ``alembic`` command.
"""
from __future__ import annotations

from alembic import context

from shared import inbox, outbox, tenancy  # noqa: F401  (registers the kernel tables)
from shared.db import KernelBase


def run_migrations(service: str, metadata) -> None:
    config = context.config
    engine = config.attributes.get("connection_engine")
    if engine is None:
        from shared.config import Settings
        from shared.db import make_engine

        engine = make_engine(Settings.from_env().database_url, service)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=[KernelBase.metadata, metadata],
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
