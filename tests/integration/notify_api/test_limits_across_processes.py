"""The usage counters hold when several API processes count at once (PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from services.notify import limits
from services.notify.wiring import MIGRATIONS
from shared.db import Database, upgrade
from shared.errors import RateLimitError


@pytest.mark.integration
def test_two_processes_counting_one_key_never_let_more_through_than_the_limit(pg_url):
    # two engines with their own connection pools stand for two API processes
    processes = [Database.connect(pg_url, "notify") for _ in range(2)]
    upgrade(processes[0], MIGRATIONS)
    now = dt.datetime(2026, 1, 14, 10, 0, 30, tzinfo=dt.UTC)
    allowed, refused = [], []
    lock = threading.Lock()

    def hammer(db: Database) -> None:
        for _ in range(40):
            try:
                with db.transaction() as session:
                    limits.check_request_rate(session, key_id="key", key_type="live",
                                              per_minute=50, now=now)
                outcome = allowed
            except RateLimitError:
                outcome = refused
            with lock:
                outcome.append(1)

    threads = [threading.Thread(target=hammer, args=(db,)) for db in processes for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert (len(allowed), len(refused)) == (50, 110)
        with processes[1].read() as session:
            assert limits.remaining_today(session, tenant_id="nobody", per_day=7, now=now) == 7
    finally:
        for db in processes:
            db.dispose()
