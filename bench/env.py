"""Throwaway infrastructure for a benchmark run: a RabbitMQ vhost and a PostgreSQL
database on 127.0.0.1, removed afterwards.  Traffic never leaves the machine."""
from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("HYSBYS_BENCH_PG_ADMIN_URL",
                              "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
RABBIT = "127.0.0.1:5672"


@contextlib.contextmanager
def vhost(prefix: str = "hysbys-bench") -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{RABBIT}/{name}"
    finally:
        try:
            _rabbitmqctl("delete_vhost", name)
        except RuntimeError as exc:
            print(f"left behind: RabbitMQ vhost {name} ({exc})", file=sys.stderr)


def _rabbitmqctl(*args: str, patience: float = 60) -> None:
    """Run rabbitmqctl, waiting out a broker that is restarting (up to ``patience`` s)."""
    deadline = time.monotonic() + patience
    while True:
        out = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True)
        if out.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {out.stderr.strip()[:300]}")
        time.sleep(2)


@contextlib.contextmanager
def database(prefix: str = "hysbys_bench") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    # no pool: after a PostgreSQL restart (a fault test) a pooled connection is dead
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _drop(admin, name)
        admin.dispose()


def _drop(admin: sa.Engine, name: str, patience: float = 60) -> None:
    """Drop the database, waiting out a server that is restarting (up to ``patience`` s)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except sa.exc.OperationalError as exc:
            if time.monotonic() > deadline:
                print(f"left behind: PostgreSQL database {name} ({exc.orig})", file=sys.stderr)
                return
            time.sleep(2)


def machine() -> dict:
    import psutil

    return {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}
