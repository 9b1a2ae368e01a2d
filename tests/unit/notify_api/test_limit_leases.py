"""The API's counters off the request's transaction: leased blocks of the allowance, and
requests per minute in Redis where it is configured.

Separate ``Database`` objects (own engines and pools) and separate counters stand for
separate API processes: they share the database and nothing in memory."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import redis

from services.notify import limits
from services.notify.wiring import MIGRATIONS
from shared.db import Database, upgrade
from shared.errors import RateLimitError, TooManyRequestsError

NOW = dt.datetime(2026, 1, 14, 10, 0, 30, tzinfo=dt.UTC)


@pytest.fixture
def databases(embedded_settings):
    dbs = [Database.connect(embedded_settings.database_url, "notify") for _ in range(3)]
    upgrade(dbs[0], MIGRATIONS)
    yield dbs
    for db in dbs:
        db.dispose()


def sends_allowed(api: limits.ApiLimits, per_day: int, tries: int, now=NOW) -> int:
    allowed = 0
    for _ in range(tries):
        try:
            api.take_daily(tenant_id="t", key_type="live", per_day=per_day, count=1, now=now)
            allowed += 1
        except TooManyRequestsError:
            pass
    return allowed


def counted_in_database(db: Database, scope="tenant-day", subject="t", now=NOW) -> int:
    start = (limits.day_window if scope == "tenant-day" else limits.minute_window)(now)[0]
    with db.read() as session:
        row = session.get(limits.UsageCounter, (scope, subject, start))
    return row.count if row else 0


def test_a_process_leases_a_block_and_then_counts_without_the_database(databases):
    api = limits.ApiLimits(databases[0])
    assert sends_allowed(api, per_day=10_000, tries=1) == 1
    assert counted_in_database(databases[0]) == limits.BLOCK      # one block leased
    assert sends_allowed(api, per_day=10_000, tries=limits.BLOCK - 1) == limits.BLOCK - 1
    assert counted_in_database(databases[0]) == limits.BLOCK      # no second lease yet
    assert sends_allowed(api, per_day=10_000, tries=1) == 1
    assert counted_in_database(databases[0]) == 2 * limits.BLOCK


def test_three_processes_never_send_past_the_daily_limit_and_refuse_early_by_less_than_their_leases(
        databases):
    per_day = 1_000                       # a block is min(50, 1000 // 100) = 10
    processes = [limits.ApiLimits(db) for db in databases]
    allowed = 0
    for _ in range(400):                  # interleaved, as a load balancer spreads them
        allowed += sum(sends_allowed(api, per_day, tries=1) for api in processes)
    assert counted_in_database(databases[0]) <= per_day
    assert allowed <= per_day
    held = sum(api.leases.held("tenant-day", "t", limits.day_window(NOW)[0]) for api in processes)
    assert allowed + held == counted_in_database(databases[0]) == per_day
    assert per_day - allowed <= len(processes) * (10 - 1)


def test_a_small_daily_limit_is_counted_exactly_one_at_a_time(databases):
    processes = [limits.ApiLimits(db) for db in databases]
    assert [sends_allowed(api, per_day=2, tries=1) for api in processes] == [1, 1, 0]
    assert counted_in_database(databases[0]) == 2


def test_a_count_handed_back_goes_back_to_the_processs_own_lease(databases):
    api = limits.ApiLimits(databases[0])
    assert sends_allowed(api, per_day=2, tries=2) == 2
    api.give_back_daily(tenant_id="t", count=1, now=NOW)
    assert sends_allowed(api, per_day=2, tries=2) == 1


def test_a_new_london_day_starts_a_new_allowance(databases):
    api = limits.ApiLimits(databases[0])
    assert sends_allowed(api, per_day=1, tries=2) == 1
    assert sends_allowed(api, per_day=1, tries=2, now=NOW + dt.timedelta(days=1)) == 1


def test_requests_per_minute_by_lease_stop_at_the_limit_across_processes(databases):
    processes = [limits.ApiLimits(db) for db in databases]
    allowed = refused = 0
    for _ in range(30):
        for api in processes:
            try:
                api.count_request(tenant_id="t", key_id="k", key_type="live", per_minute=50,
                                  now=NOW)
                allowed += 1
            except RateLimitError as exc:
                refused += 1
                assert exc.headers == {"Retry-After": "30"}
    assert allowed == 50 and refused == 40, "a block is 1 for a limit under 100: exact"


def test_test_keys_never_count_against_the_day(databases):
    api = limits.ApiLimits(databases[0])
    assert api.take_daily(tenant_id="t", key_type="test", per_day=1, count=1, now=NOW) is False
    assert counted_in_database(databases[0]) == 0


# -- Redis ------------------------------------------------------------------------

@pytest.fixture
def redis_prefix():
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable on 127.0.0.1:6379 ({exc})")
    prefix = f"hysbys-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.mark.integration
def test_requests_per_minute_in_redis_are_exact_across_processes(databases, redis_prefix):
    processes = [limits.ApiLimits(db, limits.RedisRequestCounter("redis://127.0.0.1:6379/0",
                                                                  redis_prefix))
                 for db in databases]
    allowed = 0
    for _ in range(30):
        for api in processes:
            try:
                api.count_request(tenant_id="t", key_id="k", key_type="live", per_minute=70,
                                  now=NOW)
                allowed += 1
            except RateLimitError:
                pass
    assert allowed == 70
    assert counted_in_database(databases[0], "key-minute", "k") == 0, "nothing in the database"
    next_minute = NOW + dt.timedelta(minutes=1)
    processes[0].count_request(tenant_id="t", key_id="k", key_type="live", per_minute=70,
                               now=next_minute)


def test_with_redis_unreachable_requests_are_counted_by_lease_instead(databases):
    port = _closed_port()
    api = limits.ApiLimits(databases[0], limits.RedisRequestCounter(f"redis://127.0.0.1:{port}/0"))
    for _ in range(3):
        api.count_request(tenant_id="t", key_id="k", key_type="live", per_minute=3, now=NOW)
    with pytest.raises(RateLimitError):
        api.count_request(tenant_id="t", key_id="k", key_type="live", per_minute=3, now=NOW)
    assert counted_in_database(databases[0], "key-minute", "k") == 3


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
