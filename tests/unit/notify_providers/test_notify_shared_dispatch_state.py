"""Sender throttles and provider circuits shared by several dispatchers.

Each backend the dispatchers may share them in is tested the same way: SQLite (the
embedded mode), PostgreSQL and Redis (each run with a key prefix of its own).  Two
throttle / breaker objects on one store stand for two dispatcher processes; the
last tests run two whole dispatchers, each with its own engine, on one database.
"""
from __future__ import annotations

import socket
import uuid

import pytest

from services.notify.dispatcher import RetryPolicy, Safeguards
from services.notify.providers.health import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breakers,
    DatabaseCircuitStore,
    HealthBoard,
    RedisCircuitStore,
)
from services.notify.providers.throttle import DatabaseThrottle, RedisThrottle, window_for
from services.notify.wiring import build
from tests.unit.notify_providers.providers_support import Clock, Harness, ScriptedProvider

REDIS_URL = "redis://127.0.0.1:6379/0"
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
BACKENDS = [*DATABASES, pytest.param("redis", marks=pytest.mark.integration)]


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own; its keys are deleted afterwards."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        pytest.fail(f"Redis is not reachable on 127.0.0.1:6379 ({exc}); .ci/run starts it")
    import redis

    prefix = f"hysbys-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    """(settings for the notify service, backend name)."""
    from tests.conftest import _base_settings

    settings = _base_settings(tmp_path, allowed_providers=("simulator", "twilio"))
    if request.param == "postgresql":
        settings = settings.with_(database_url=request.getfixturevalue("pg_url"))
    if request.param == "redis":
        settings = settings.with_(redis_url=REDIS_URL,
                                  redis_prefix=request.getfixturevalue("redis_prefix"))
    return settings, request.param


def _dispatcher_pair(settings, clock: Clock, providers: dict, *, window: float = 1.0,
                     failure_threshold: int = 3, cooldown: float = 30.0, lease: float = 20.0):
    """Two notify services on the same database and store: two dispatchers, migrated once."""
    harnesses = []
    for _ in range(2):
        svc = build(settings, providers=providers, safeguards=Safeguards())
        db = svc.runtime.db
        if settings.redis_url:
            throttle = RedisThrottle(settings.redis_url, prefix=settings.redis_prefix, window=window)
            store = RedisCircuitStore(settings.redis_url, prefix=settings.redis_prefix)
        else:
            throttle, store = DatabaseThrottle(clock=clock, window=window), DatabaseCircuitStore(db)
        guard = svc.dispatcher.guard
        guard.retry = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=5.0)
        guard.throttle, guard.health = throttle, HealthBoard(clock=clock)
        guard.breakers = Breakers(failure_threshold, cooldown, clock=clock, store=store,
                                  trial_lease=lease)
        if not harnesses:
            svc.runtime.migrate()
        harnesses.append(Harness(svc, clock))
    return harnesses


@pytest.fixture
def pair(backend):
    settings, _ = backend
    made = []

    def _make(providers: dict, **options):
        made.extend(_dispatcher_pair(settings, Clock(), providers, **options))
        return made[-2], made[-1]

    yield _make
    for h in made:
        h.db.dispose()


# -- the throttle ---------------------------------------------------------------------------

def _takes(h: Harness, key, rate, cost=1.0) -> bool:
    with h.db.transaction() as session:
        return h.dispatcher.guard.throttle.try_take(key, rate, cost, session=session)


def test_two_dispatchers_share_one_senders_allowance(pair, backend):
    # Redis's windows run on the wall clock: a minute-long window keeps the test's few
    # milliseconds from refilling anything (0.5/s over 60 s: 30 segments; the database
    # bucket then holds a minute's worth, and its test clock does not move)
    a, b = pair({}, window=60.0)
    key = ("tenant-1", "twilio", "+447700900400")
    taken = [_takes(a if i % 2 else b, key, 0.5) for i in range(40)]
    assert taken.count(True) == 30 and taken[:30] == [True] * 30, taken
    assert not _takes(a, key, 0.5) and not _takes(b, key, 0.5)
    other = ("tenant-1", "twilio", "+447700900401")
    assert _takes(b, other, 0.5), "another sender has its own allowance"


def test_the_shared_throttle_counts_segments(pair, backend):
    a, b = pair({}, window=60.0)
    key = ("tenant-2", "twilio", "MG123")
    assert _takes(a, key, 0.1, cost=4)          # 6 segments a minute
    assert not _takes(b, key, 0.1, cost=4), "4 + 4 segments is more than 6"
    assert _takes(b, key, 0.1, cost=2)
    assert not _takes(a, key, 0.1, cost=1)


@pytest.mark.parametrize("backend", DATABASES, indirect=True)
def test_the_database_bucket_refills_at_the_rate_for_every_dispatcher(pair, backend):
    # the database bucket only: Redis's windows run on the wall clock, not a test's
    a, b = pair({})
    key = ("tenant-3", "twilio", "+447700900400")
    clock = a.clock
    b.dispatcher.guard.throttle.clock = a.dispatcher.guard.throttle.clock = clock
    assert [_takes(a, key, 2.0), _takes(b, key, 2.0), _takes(a, key, 2.0)] == [True, True, False]
    clock.advance(0.5)
    assert [_takes(b, key, 2.0), _takes(a, key, 2.0)] == [True, False], "one token in half a second"
    clock.advance(10)
    assert [_takes(a, key, 2.0), _takes(b, key, 2.0), _takes(a, key, 2.0)] == [True, True, False], \
        "the bucket holds one second's worth, however long it rested"


def test_a_text_dearer_than_the_window_still_goes_when_the_sender_is_idle(pair, backend):
    a, b = pair({}, window=60.0)
    key = ("tenant-4", "twilio", "+447700900400")
    rate = 5 / 60      # five segments a minute
    assert _takes(a, key, rate, cost=6), "a 6-segment text on a 5-segment sender is not starved"
    assert not _takes(b, key, rate, cost=1)


def test_the_window_for_a_rate():
    assert window_for(10) == (10, 1)
    assert window_for(0.2) == (1, 5)
    assert window_for(0.5, 60) == (30, 60)
    assert window_for(2.5) == (2, 1) or window_for(2.5) == (3, 1)


# -- the circuit ----------------------------------------------------------------------------

def test_outages_seen_by_two_dispatchers_open_one_circuit_for_both(pair):
    a, b = pair({}, failure_threshold=3)
    ba, bb = a.dispatcher.guard.breakers["twilio"], b.dispatcher.guard.breakers["twilio"]
    ba.record(outage=True)
    bb.record(outage=True)
    assert ba.state == bb.state == CLOSED and bb.failures == 2
    ba.record(outage=True)
    assert ba.state == bb.state == OPEN
    assert not bb.available() and not bb.allow(), "the other dispatcher skips the provider too"
    assert b.dispatcher.guard.breakers["notify"].allow(), "another provider's circuit is apart"


def test_an_answer_resets_the_shared_count(pair):
    a, b = pair({}, failure_threshold=3)
    ba, bb = a.dispatcher.guard.breakers["twilio"], b.dispatcher.guard.breakers["twilio"]
    ba.record(outage=True)
    ba.record(outage=True)
    bb.record(outage=False)
    ba.record(outage=True)
    assert ba.state == CLOSED and ba.failures == 1


def test_after_the_cool_down_only_one_dispatcher_takes_the_trial_and_its_success_closes_it(pair):
    a, b = pair({}, failure_threshold=1, cooldown=30.0)
    ba, bb = a.dispatcher.guard.breakers["twilio"], b.dispatcher.guard.breakers["twilio"]
    ba.record(outage=True)
    assert ba.state == OPEN
    a.clock.advance(30.0)
    assert ba.state == bb.state == HALF_OPEN and bb.available()
    assert ba.allow(), "the first to ask takes the trial"
    assert not bb.allow() and not bb.available(), "one trial call at a time, across dispatchers"
    ba.record(outage=False)
    assert bb.state == CLOSED and bb.allow()


def test_a_failed_trial_opens_the_circuit_again_for_everyone(pair):
    a, b = pair({}, failure_threshold=2, cooldown=30.0)
    ba, bb = a.dispatcher.guard.breakers["twilio"], b.dispatcher.guard.breakers["twilio"]
    ba.record(outage=True)
    ba.record(outage=True)
    a.clock.advance(31.0)
    assert bb.allow()
    bb.record(outage=True)
    assert ba.state == OPEN and not ba.allow()


def test_a_trial_whose_dispatcher_died_is_taken_over_when_its_lease_runs_out(pair):
    a, b = pair({}, failure_threshold=1, cooldown=30.0, lease=20.0)
    ba, bb = a.dispatcher.guard.breakers["twilio"], b.dispatcher.guard.breakers["twilio"]
    ba.record(outage=True)
    a.clock.advance(30.0)
    assert ba.allow()            # ... and dispatcher a dies mid-call: it never records
    a.clock.advance(19.0)
    assert not bb.allow()
    a.clock.advance(1.0)
    assert bb.available() and bb.allow(), "the lease ran out: the other dispatcher takes the trial"
    bb.record(outage=False)
    assert ba.state == CLOSED


# -- two whole dispatchers ------------------------------------------------------------------

def test_two_dispatchers_on_one_database_send_a_sender_at_its_rate_not_twice_it(pair, backend):
    twilio = ScriptedProvider("twilio", ("sms",))
    a, b = pair({"twilio": twilio}, window=60.0)
    rate = 0.1      # over a minute's window: 6 segments (the test clock does not move)
    tenant = a.tenant(["twilio"], capacity={"segments_per_second": rate, "senders": 1})
    ids = [a.send(tenant, to=f"+4477009001{i:02d}") for i in range(20)]

    claimed = [a.dispatcher.run_once(), b.dispatcher.run_once(), a.dispatcher.run_once(),
               b.dispatcher.run_once()]
    assert sum(claimed) == 6, claimed
    assert claimed[0] == 6 and claimed[1:] == [0, 0, 0], "the second dispatcher found it spent"
    assert len(twilio.sent) == 6 and len({m.notification_id for m in twilio.sent}) == 6
    statuses = [a.row(i).status for i in ids]
    assert statuses.count("sent") == 6 and statuses.count("created") == 14
    assert all(a.row(i).attempts == 0 for i in ids if a.row(i).status == "created")


def test_an_outage_one_dispatcher_meets_holds_the_others_rows_too(pair):
    from tests.unit.notify_providers.providers_support import outage

    twilio = ScriptedProvider("twilio", ("sms",), outage(), outage())
    a, b = pair({"twilio": twilio}, failure_threshold=2)
    tenant = a.tenant(["twilio"])
    first, second = a.send(tenant, to="+447700900111"), a.send(tenant, to="+447700900112")
    assert a.dispatcher.run_once() == 2
    assert len(twilio.sent) == 2
    a.elapse_backoff()
    assert b.dispatcher.run_once() == 0, "dispatcher b sees the circuit a opened"
    assert {a.row(first).status, a.row(second).status} == {"created"}
    assert len(twilio.sent) == 2
