"""Fixtures shared by every tier.

* ``embedded_settings``: SQLite in a temporary folder, kombu's memory transport.
* ``real_settings``: a throwaway RabbitMQ vhost and a throwaway PostgreSQL
  database on 127.0.0.1, made for the test and removed after it.  When either
  server cannot be reached the test fails: integration tests are never skipped.
* ``platform``: the three services started in this process on free ports, with
  either settings (see ``stack`` parametrisation in the tests that use it).

Tests marked ``slow`` (the fault runs in tests/faults, which stop the shared broker
and restart PostgreSQL) run in ``make test-faults``; ``make test`` deselects them.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from shared.config import Settings

T = TypeVar("T")

RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
PG_ADMIN_URL = os.environ.get("HYSBYS_TEST_PG_ADMIN_URL",
                              "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05,
               message: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy (asynchronous effects)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} not reached within {timeout}s (last: {last!r})")


def _base_settings(tmp_path: Path, **overrides) -> Settings:
    values = dict(
        database_url=f"sqlite:///{tmp_path}/hysbys.db", broker_url="memory://",
        secret_key=Fernet.generate_key().decode(), admin_token="test-admin-token",
        var_dir=tmp_path, ports={"notify": free_port(), "inbound": free_port(),
                                 "scheduler": free_port()},
        relay_interval=0.05, dispatch_interval=0.05, ticker_interval=0.1, log_json=True)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(autouse=True)
def _fresh_memory_broker():
    """kombu's memory transport keeps queues in class attributes: empty them per test."""
    from kombu.transport import memory

    memory.Channel.queues.clear()
    memory.Channel.events.clear()
    memory.Transport.global_state.clear()
    yield


@pytest.fixture
def embedded_settings(tmp_path) -> Settings:
    return _base_settings(tmp_path)


def _require(host: str, port: int, what: str) -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        pytest.fail(f"{what} is not reachable on {host}:{port} ({exc}); integration tests "
                    "need it (.ci/run starts it)")


@pytest.fixture
def rabbit_url():
    """A throwaway vhost on the local RabbitMQ, deleted afterwards."""
    _require(RABBIT_HOST, RABBIT_PORT, "RabbitMQ")
    vhost = f"hysbys-test-{uuid.uuid4().hex[:10]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*",
                    ".*"], check=True, capture_output=True)
    yield f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{vhost}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


@pytest.fixture
def pg_url():
    """A throwaway PostgreSQL database, dropped afterwards."""
    _require("127.0.0.1", 5432, "PostgreSQL")
    name = f"hysbys_test_{uuid.uuid4().hex[:10]}"
    # pre-ping: a fault test may have restarted PostgreSQL while this test ran
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def real_settings(tmp_path, rabbit_url, pg_url) -> Settings:
    return _base_settings(tmp_path, database_url=pg_url, broker_url=rabbit_url)


@pytest.fixture(params=["embedded", pytest.param("real", marks=pytest.mark.integration)])
def stack_settings(request, tmp_path) -> Settings:
    """Run the test twice: embedded (memory + SQLite), and real (RabbitMQ + PostgreSQL)."""
    if request.param == "embedded":
        return _base_settings(tmp_path)
    return request.getfixturevalue("real_settings")


@pytest.fixture
def platform(stack_settings):
    from services.embedded import Platform

    p = Platform(stack_settings)
    p.migrate()
    p.start()
    yield p
    p.stop()
