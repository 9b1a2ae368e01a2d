"""The PostgreSQL pool: a connection that died while it sat idle in the pool is replaced
at checkout (what ``pool_pre_ping`` did on every checkout, now only after idleness)."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from shared import db as dbmod

pytestmark = pytest.mark.integration


def test_a_connection_killed_while_idle_in_the_pool_is_replaced_at_checkout(pg_url):
    engine = dbmod.make_engine(pg_url, "notify")
    try:
        with engine.connect() as conn:
            first_pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        # the server side goes away while the connection waits in the pool
        admin = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"),
                                {"pid": first_pid}).scalar()
        admin.dispose()
        time.sleep(dbmod.IDLE_BEFORE_PING + 0.2)

        with engine.connect() as conn:    # no error: the dead one was pinged and replaced
            second_pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        assert second_pid != first_pid
    finally:
        engine.dispose()


def test_a_connection_back_in_the_pool_a_moment_ago_is_not_pinged(pg_url):
    engine = dbmod.make_engine(pg_url, "notify")
    pings = []
    real_ping = engine.dialect.do_ping
    engine.dialect.do_ping = lambda c: pings.append(1) or real_ping(c)   # count, still ping
    try:
        for _ in range(5):
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        assert pings == []
        time.sleep(dbmod.IDLE_BEFORE_PING + 0.2)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        assert pings == [1]
    finally:
        engine.dispose()


def test_only_a_counting_transaction_commits_without_waiting_for_the_disk(pg_url):
    database = dbmod.Database(dbmod.make_engine(pg_url, "notify"), "notify")
    show = sa.text("SHOW synchronous_commit")
    try:
        with database.transaction(durable=False) as session:
            assert session.execute(show).scalar() == "off"
        with database.transaction() as session:     # the same pooled connection, reset
            assert session.execute(show).scalar() == "on"
        with database.read() as session:
            assert session.execute(show).scalar() == "on"
    finally:
        database.dispose()
