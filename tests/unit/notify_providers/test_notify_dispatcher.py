"""The dispatcher: failover, retries through the database, circuit breakers, the sender
throttle, exactly-once hand-off and the sweeper — driven by hand with scripted providers."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from services.notify.models import Notification, ProviderState
from services.notify.providers.base import ProviderError, SendResult
from services.notify.providers.twilio import TwilioFactory
from services.notify.sending import find_suppression
from tests.fakes.twilio_server import FakeTwilio
from tests.unit.notify_providers.providers_support import ScriptedProvider, outage

TO = "+447700900123"


def test_a_notification_goes_to_the_tenants_first_provider_and_is_recorded_sent(make_notify):
    twilio, notify = ScriptedProvider("twilio"), ScriptedProvider("notify")
    h = make_notify({"twilio": twilio, "notify": notify})
    nid = h.send(h.tenant(["twilio", "notify"]))

    assert h.dispatcher.run_once() == 1

    row = h.row(nid)
    assert (row.status, row.provider, row.attempts) == ("sent", "twilio", 1)
    assert row.provider_reference == "twilio-1" and row.handoff_at is not None
    assert [m.to for m in twilio.sent] == [TO] and notify.sent == []
    assert h.statuses(nid) == ["sent"]


def test_a_retryable_error_fails_over_to_the_next_provider_in_the_same_attempt(make_notify):
    twilio, notify = ScriptedProvider("twilio", ("sms",), outage()), ScriptedProvider("notify")
    h = make_notify({"twilio": twilio, "notify": notify})
    nid = h.send(h.tenant(["twilio", "notify"]))

    h.dispatcher.run_once()

    row = h.row(nid)
    assert (row.status, row.provider, row.attempts) == ("sent", "notify", 1)
    assert len(twilio.sent) == 1 and len(notify.sent) == 1


def test_when_every_provider_fails_retryably_the_notification_waits_as_created_with_a_backoff(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",), outage("Twilio answered 503"))
    h = make_notify({"twilio": twilio})
    nid = h.send(h.tenant(["twilio"]))

    h.dispatcher.run_once()

    row = h.row(nid)
    assert (row.status, row.attempts, row.handoff_at) == ("created", 1, None)
    assert row.not_before > dt.datetime.now(dt.UTC), "the row waits in the database, nobody sleeps"
    assert "Twilio answered 503" in row.status_reason
    assert h.dispatcher.run_once() == 0, "not claimed again before its backoff is over"
    assert h.statuses(nid) == [], "a retry is not a status change anyone is told about"


def test_after_the_retry_budget_the_notification_ends_technical_failure_with_the_reason(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",), *[outage("Twilio answered 503")] * 3)
    h = make_notify({"twilio": twilio}, max_attempts=3, failure_threshold=10)
    nid = h.send(h.tenant(["twilio"]))

    for _ in range(3):
        h.dispatcher.run_once()
        h.elapse_backoff()

    row = h.row(nid)
    assert (row.status, row.attempts) == ("technical-failure", 3)
    assert row.status_reason.startswith("gave up after 3 attempts: twilio: Twilio answered 503")
    assert len(twilio.sent) == 3
    assert h.dispatcher.run_once() == 0
    assert h.statuses(nid) == ["technical-failure"]


def test_a_permanent_error_ends_the_notification_without_failover_or_retry(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",), ProviderError(
        "Twilio answered 400 (error 21211)", retryable=False, status="permanent-failure"))
    notify = ScriptedProvider("notify")
    h = make_notify({"twilio": twilio, "notify": notify})
    nid = h.send(h.tenant(["twilio", "notify"]))

    h.dispatcher.run_once()

    row = h.row(nid)
    assert (row.status, row.provider) == ("permanent-failure", "twilio")
    assert notify.sent == []


def test_a_provider_whose_circuit_is_open_is_skipped_and_the_next_one_sends(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",), *[outage()] * 3)
    notify = ScriptedProvider("notify")
    h = make_notify({"twilio": twilio, "notify": notify}, failure_threshold=3)
    tenant = h.tenant(["twilio", "notify"])
    for _ in range(3):
        h.send(tenant)
    h.dispatcher.run_once()
    assert h.dispatcher.guard.breakers["twilio"].state == "open"

    later = h.send(tenant)
    h.dispatcher.run_once()

    assert len(twilio.sent) == 3, "no call to a provider whose circuit is open"
    assert h.row(later).provider == "notify"


def test_when_every_circuit_is_open_the_notification_waits_without_spending_an_attempt(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",), *[outage()] * 3)
    h = make_notify({"twilio": twilio}, failure_threshold=3)
    tenant = h.tenant(["twilio"])
    for _ in range(3):
        h.send(tenant)
    h.dispatcher.run_once()

    waiting = h.send(tenant)
    assert h.dispatcher.run_once() == 0, "nothing is claimed while every circuit is open"
    row = h.row(waiting)
    assert (row.status, row.attempts) == ("created", 0)


def test_after_the_cool_down_one_trial_call_closes_the_circuit(make_notify, clock):
    twilio = ScriptedProvider("twilio", ("sms",), *[outage()] * 3)
    h = make_notify({"twilio": twilio}, failure_threshold=3, cooldown=30)
    tenant = h.tenant(["twilio"])
    for _ in range(3):
        h.send(tenant)
    h.dispatcher.run_once()
    breaker = h.dispatcher.guard.breakers["twilio"]

    clock.advance(31)
    assert breaker.state == "half-open"
    h.elapse_backoff()
    trial = h.send(tenant)
    h.dispatcher.run_once()

    assert breaker.state == "closed"
    assert h.row(trial).status == "sent"


def test_a_sender_at_capacity_leaves_the_rest_created_until_its_tokens_come_back(make_notify, clock):
    twilio = ScriptedProvider("twilio", ("sms",))
    h = make_notify({"twilio": twilio})
    tenant = h.tenant(["twilio"], capacity={"segments_per_second": 2, "senders": 1})
    ids = [h.send(tenant) for _ in range(5)]

    assert h.dispatcher.run_once() == 2
    assert h.dispatcher.run_once() == 0, "no tokens left this second"
    clock.advance(1.0)
    assert h.dispatcher.run_once() == 2
    clock.advance(0.5)
    assert h.dispatcher.run_once() == 1

    assert [h.row(i).status for i in ids] == ["sent"] * 5
    assert all(h.row(i).attempts == 1 for i in ids), "waiting for the throttle is not an attempt"


def test_the_throttle_counts_segments_not_messages(make_notify, clock):
    twilio = ScriptedProvider("twilio", ("sms",))
    h = make_notify({"twilio": twilio})
    tenant = h.tenant(["twilio"], capacity={"segments_per_second": 4, "senders": 1})
    long_day = "x" * 200   # the body becomes two segments
    h.send(tenant, body_day=long_day)
    h.send(tenant, body_day=long_day)
    h.send(tenant, body_day=long_day)

    assert h.dispatcher.run_once() == 2, "two 2-segment texts fill a 4 segment/s sender"


def test_a_test_key_only_reaches_the_simulator_even_for_a_twilio_tenant(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",))
    h = make_notify({"twilio": twilio})
    nid = h.send(h.tenant(["twilio"]), "+447700900222", key_type="test")

    h.dispatcher.run_once()

    assert twilio.sent == []
    assert (h.row(nid).status, h.row(nid).provider) == ("delivered", "simulator")


def test_a_claim_handed_off_twice_calls_the_provider_once(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",))
    h = make_notify({"twilio": twilio})
    nid = h.send(h.tenant(["twilio"]))

    claims = h.dispatcher.claim()
    h.dispatcher.hand_off(claims)
    h.dispatcher.hand_off(claims)   # a duplicated claim, e.g. a retried loop iteration

    assert len(twilio.sent) == 1
    assert h.statuses(nid) == ["sent"]


def test_a_duplicate_hand_off_while_the_first_is_still_with_the_provider_sends_nothing(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",))
    h = make_notify({"twilio": twilio})
    nid = h.send(h.tenant(["twilio"]))
    claims = h.dispatcher.claim()
    duplicate_ran = []

    def in_flight(message):           # the first call is still waiting on Twilio...
        if not duplicate_ran:
            duplicate_ran.append(True)
            h.dispatcher.hand_off(claims)   # ...when a duplicate of the same claim runs
        return SendResult("sent", "SM-first")

    twilio.then(in_flight)
    h.dispatcher.hand_off(claims)

    assert duplicate_ran and len(twilio.sent) == 1
    assert h.row(nid).provider_reference == "SM-first"


def test_a_claim_the_sweeper_gave_away_is_not_sent_by_its_late_first_dispatcher(make_notify):
    from services.notify.dispatcher import Dispatcher

    twilio = ScriptedProvider("twilio", ("sms",))
    h = make_notify({"twilio": twilio})
    nid = h.send(h.tenant(["twilio"]))
    stalled = h.dispatcher.claim()                 # this dispatcher stalls for a long time
    h.age(nid, updated_at=dt.timedelta(minutes=11))
    h.dispatcher.sweep()
    other = Dispatcher(h.db, h.service.choose_providers, safeguards=h.dispatcher.guard)
    fresh = other.claim()

    h.dispatcher.hand_off(stalled)                 # wakes up late: the row is not its any more
    other.hand_off(fresh)

    assert len(twilio.sent) == 1
    assert (h.row(nid).status, h.row(nid).attempts) == ("sent", 2)


def test_two_dispatchers_on_one_database_send_each_notification_once(make_notify):
    from services.notify.dispatcher import Dispatcher

    twilio = ScriptedProvider("twilio", ("sms",))
    h = make_notify({"twilio": twilio})
    tenant = h.tenant(["twilio"], capacity={"segments_per_second": 1000, "senders": 1})
    ids = [h.send(tenant, f"+4477009001{i:02d}") for i in range(20)]
    other = Dispatcher(h.db, h.service.choose_providers, batch=7, safeguards=h.dispatcher.guard)
    h.dispatcher.batch = 5

    while h.dispatcher.run_once() + other.run_once():
        pass

    assert sorted(m.notification_id for m in twilio.sent) == sorted(ids)


def test_the_sweeper_requeues_a_claim_that_never_reached_a_provider(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",))
    h = make_notify({"twilio": twilio})
    nid = h.send(h.tenant(["twilio"]))
    h.dispatcher.claim()                       # ...and the worker died before the hand-off
    h.age(nid, updated_at=dt.timedelta(minutes=11))

    assert h.dispatcher.sweep() == (1, 0)
    assert h.row(nid).status == "created"
    h.dispatcher.run_once()

    assert h.row(nid).status == "sent"
    assert len(twilio.sent) == 1


class WorkerDied(BaseException):
    """The process ends mid-call (kill -9): nothing after this line runs."""


def test_the_sweeper_fails_a_hand_off_with_no_outcome_and_it_is_never_sent_again(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",), WorkerDied())
    h = make_notify({"twilio": twilio})
    nid = h.send(h.tenant(["twilio"]))
    try:
        h.dispatcher.run_once()
    except WorkerDied:
        pass
    row = h.row(nid)
    assert (row.status, row.handoff_at is not None) == ("sending", True)
    h.age(nid, handoff_at=dt.timedelta(minutes=11), updated_at=dt.timedelta(minutes=11))

    assert h.dispatcher.sweep() == (0, 1)
    h.dispatcher.run_once()

    row = h.row(nid)
    assert row.status == "technical-failure"
    assert row.status_reason.startswith("outcome unknown")
    assert len(twilio.sent) == 1, "Twilio may have it: it is never sent a second time"


def test_the_sweeper_leaves_recent_claims_alone(make_notify):
    h = make_notify({"twilio": ScriptedProvider("twilio", ("sms",))})
    nid = h.send(h.tenant(["twilio"]))
    h.dispatcher.claim()

    assert h.dispatcher.sweep() == (0, 0)
    assert h.row(nid).status == "sending"


def test_twilio_21610_suppresses_the_recipient_and_announces_the_opt_out(make_notify):
    with FakeTwilio("AC" + "5" * 32, "auth-token-21610", from_number="+447700900400") as fake:
        fake.fail_with(21610)
        h = make_notify({"twilio": TwilioFactory(base_url=fake.url, timeout=2)})
        tenant = h.tenant(["twilio"], provider_credentials={"twilio": fake.credentials()})
        nid = h.send(tenant)

        h.dispatcher.run_once()
        again = h.send(tenant)
        h.dispatcher.run_once()

    row = h.row(nid)
    assert (row.status, row.provider) == ("permanent-failure", "twilio")
    with h.db.read() as session:
        assert find_suppression(session, tenant, "sms", TO) is not None
    opted_out = h.events("subscriber.opted_out")
    assert [(e["tenant_id"], e["data"]["recipient"]) for e in opted_out] == [(tenant, TO)]
    assert h.row(again).status == "suppressed"
    assert len(fake.messages) == 0 and len(fake.requests) == 1, "the suppressed send never reached Twilio"
    assert fake.problems == []


def test_provider_health_is_written_for_the_ops_page(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",), outage(), SendResult("sent"))
    h = make_notify({"twilio": twilio})
    tenant = h.tenant(["twilio"])
    h.send(tenant)
    h.send(tenant)
    h.dispatcher.run_once()

    h.dispatcher.guard.health.flush(h.db, h.dispatcher.guard.breakers)

    with h.db.read() as session:
        state = session.scalars(sa.select(ProviderState)).one()
    assert (state.provider, state.circuit, state.recent_calls, state.recent_errors) == \
        ("twilio", "closed", 2, 1)
    assert state.latency_p50_ms is not None


def test_a_text_deferred_by_quiet_hours_is_sent_once_they_are_over(make_notify):
    twilio = ScriptedProvider("twilio", ("sms",))
    h = make_notify({"twilio": twilio})
    nid = h.send(h.tenant(["twilio"]))
    with h.db.transaction() as session:
        session.execute(sa.update(Notification).where(Notification.id == nid).values(
            status="deferred", not_before=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)))
    assert h.dispatcher.run_once() == 0, "still quiet"

    h.age(nid, not_before=dt.timedelta(seconds=1))
    h.dispatcher.run_once()

    assert h.row(nid).status == "sent" and len(twilio.sent) == 1


class _PassesThenStop:
    """Stands in for a dispatcher's passes: each call claims the next count; after the
    last, the loop's stop event is set."""

    def __init__(self, counts, stop):
        self.counts, self.stop = list(counts), stop

    def __call__(self, *, wait: bool = True) -> int:
        claimed = self.counts.pop(0)
        if not self.counts:
            self.stop.set()
        return claimed


def test_the_loop_claims_at_once_after_a_chunk_lingers_after_a_trickle_and_waits_after_nothing(
        make_notify):
    import threading

    from services.notify.dispatcher import Dispatcher

    h = make_notify({"twilio": ScriptedProvider("twilio")})
    d = Dispatcher(h.db, h.service.choose_providers, chunk=10, interval=0.1, linger=0.02,
                   safeguards=h.dispatcher.guard)
    stop = threading.Event()
    pauses: list[float] = []
    d.run_once = _PassesThenStop([200, 10, 3, 1, 0, 9], stop)
    d.pause = pauses.append
    d.run_forever(stop)
    # a full chunk or more: claim again at once; a trickle: linger; nothing: the interval
    assert pauses == [0.0, 0.0, 0.02, 0.02, 0.1, 0.02]
