"""Three dispatchers share one sender's throttle; one of them is SIGKILLed mid-batch.

``hysbys worker notify --no-dispatcher`` and three ``hysbys dispatcher`` processes, as
compose and Kubernetes run them with ``replicas: 3``, sharing the sender throttles and
provider circuits in Redis (``HYSBYS_REDIS_URL``, with a key prefix of this run's own)
or, without Redis, in notify's PostgreSQL database.  Four tenants send through the fake
Twilio (a process of its own, which keeps every request's arrival time): one is
throttled at 10 segments a second, three have room to send fast.  When a third of the
run is handed off, ``dispatcher-2`` is killed and not started again: the other two go on.

Counted: nothing lost, nothing sent twice (at most one accepted call per notification,
the killed chunk's rows "outcome unknown"), and the throttled sender's rate from the
fake's own arrival times: over the run at most 10 a second, and in any 10 s window at
most 10 × 10, plus the throttle's burst (one second's worth: 10), plus what hand-off
delay can bunch: the throttle is taken when a row is claimed and the row reaches the
provider when its lane gets to it, so each dispatcher may land one claim's allowance
(10) late into a window, and the same over the run as a whole (its first arrivals trail
their claims the most).  The most in any 1 s window is reported, not asserted: that
same delay lets it exceed 10 + 10 (24 and 27 were seen; docs/decisions.md).  Three
dispatchers each keeping the rate to themselves would send 30 a second, 300 in ten.
"""
from __future__ import annotations

import socket
import uuid

import pytest
import sqlalchemy as sa

from tests.faults.harness import FAST, assert_exactly_once, fake_stats

pytestmark = [pytest.mark.slow, pytest.mark.integration]

RATE = 10           # the throttled sender's segments a second
BURST = RATE        # the throttle lets one second's worth go at once
N = 1200            # 300 per tenant: the throttled one's take 30 s at 10/s
DISPATCHERS = 3
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_prefix():
    """A key prefix of this run's own in the shared local Redis; its keys deleted after."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        pytest.fail(f"Redis is not reachable on 127.0.0.1:6379 ({exc}); .ci/run starts it")
    import redis

    prefix = f"hysbys-fault-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def most_in_window(times: list[tuple[float, int]], seconds: float) -> int:
    """The most segments whose arrival falls in any window of ``seconds`` (sorted input)."""
    best, total, start = 0, 0, 0
    for end in range(len(times)):
        total += times[end][1]
        while times[end][0] - times[start][0] >= seconds:
            total -= times[start][1]
            start += 1
        best = max(best, total)
    return best


@pytest.mark.parametrize("store", ["redis", "database"])
def test_three_dispatchers_one_killed_keep_a_senders_rate_and_send_each_text_once(
        start_run, fake_providers, store, request):
    twilio = fake_providers["twilio"]
    extra = {}
    if store == "redis":
        extra = {"HYSBYS_REDIS_URL": REDIS_URL,
                 "HYSBYS_REDIS_PREFIX": request.getfixturevalue("redis_prefix")}
    # a stale time of 60 s, not the harness's 20: on a loaded machine the tail of a
    # 200-row claim can wait in its lane longer than 20 s, and another dispatcher's
    # sweeper would take it back (never sent twice, but its throttle tokens wasted)
    run = start_run(fake_twilio_url=twilio["url"], dispatchers=DISPATCHERS, extra_env=extra, n=N,
                    stale_after=60.0)
    creds = {"providers": ["twilio"], "provider_credentials": {"twilio": twilio["credentials"]}}
    throttled, *_fast = run.add_tenants(
        [{**creds, "capacity": {"segments_per_second": RATE, "senders": 1}}]
        + [{**creds, "capacity": FAST}] * 3)
    run.begin()

    run.wait_handled(1 / 3)
    run.proc("dispatcher-2").kill()
    run.wait_settled(also_settled=("sent",))

    stats = fake_stats(twilio["url"])
    tally = run.tally(provider_accepted=stats["accepted"])
    with run.engine.connect() as conn:
        segments = dict(conn.execute(sa.text(
            "SELECT id, coalesce(fragment_count, 1) FROM notify.notifications "
            "WHERE tenant_id = :t"), {"t": throttled["id"]}).all())
    arrivals = [(at, segments[nid]) for at, nid in stats["received"] if nid in segments]
    total = sum(s for _, s in arrivals)
    span = arrivals[-1][0] - arrivals[0][0]
    one_second, ten_seconds = most_in_window(arrivals, 1.0), most_in_window(arrivals, 10.0)
    # the first second's burst aside, the segments over the time they took
    overall = (total - BURST) / span if span > 0 else float("inf")
    gaps = [b[0] - a[0] for a, b in zip(arrivals, arrivals[1:], strict=False)]
    per_5s: dict[int, int] = {}      # the throttled sender's timeline, for the report
    for at, cost in arrivals:
        slot = int((at - arrivals[0][0]) // 5)
        per_5s[slot] = per_5s.get(slot, 0) + cost
    run.report("test_three_dispatchers_one_killed_keep_a_senders_rate_and_send_each_text_once",
               f"3 dispatchers ({store}), dispatcher-2 SIGKILLed at 1/3 handed off", tally,
               store=store, throttled_segments=total, throttled_span_seconds=round(span, 2),
               most_in_1s=one_second, most_in_10s=ten_seconds,
               overall_rate_per_s=round(overall, 2), longest_gap_s=round(max(gaps), 2),
               segments_per_5s=[per_5s.get(i, 0) for i in range(max(per_5s) + 1)])

    assert_exactly_once(tally, n=run.n)
    assert set(tally.by_status) <= {"sent", "technical-failure"}, tally.by_status
    assert tally.by_status.get("technical-failure", 0) == tally.outcome_unknown
    assert len(arrivals) + sum(1 for nid in segments if nid not in stats["accepted"]) \
        == run.n // 4, "every throttled text reached Twilio once, or ended outcome unknown"
    assert ten_seconds <= RATE * 10 + BURST + DISPATCHERS * RATE, \
        f"{ten_seconds} segments in ten seconds"
    # over the run: the bucket's claims, shifted by the hand-off delay.  Arrivals trail
    # their claims by the time a row waits in its lane, which is longest at the start
    # (the fast tenants' chunks fill the lanes) and nil at the end, so the arrivals' span
    # is shorter than the claims' by up to that wait; the same allowance per dispatcher
    # as the ten-second window.  An idle CI machine sent 300 at exactly 10 a second
    # (60, 50, 50, 50, 50, 40 a 5 s) and measured 10.17 over the arrivals' 28.5 s.
    assert total <= BURST + RATE * span + DISPATCHERS * RATE, \
        f"{total} segments over {span:.1f} s ({overall:.2f} a second)"
