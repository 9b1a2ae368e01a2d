"""Provider lanes (finding F1) and holding outcomes through a database outage (F7).

A lane per remote provider: while one provider blocks, the other provider's rows are
handed off, the blocked provider's new rows wait ``created`` without spending an
attempt, and no row is called twice.  When the database fails the record of a chunk's
outcomes, the dispatcher keeps them and records them when it is back.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from services.notify.dispatcher import Dispatcher
from services.notify.providers.base import SendResult
from tests.conftest import eventually
from tests.unit.notify_providers.providers_support import ScriptedProvider


class Blocking:
    """An answer for a ScriptedProvider: holds the call until released (at most 10 s)."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, message) -> SendResult:
        self.entered.set()
        self.release.wait(10)
        return SendResult("sent")


class InProcess(ScriptedProvider):
    """A scripted provider that runs in-process, as the simulator does."""

    remote = False


@pytest.fixture
def blocking():
    answer = Blocking()
    yield answer
    answer.release.set()


def _numbers(prefix: int, count: int) -> list[str]:
    return [f"+447700900{prefix}{i:02d}" for i in range(count)]


def test_a_blocked_provider_holds_up_only_its_own_lane(make_notify, blocking):
    twilio = ScriptedProvider("twilio", ("sms",), blocking)
    notify = ScriptedProvider("notify", ("sms",))
    h = make_notify({"twilio": twilio, "notify": notify})
    stuck, other = h.tenant(["twilio"]), h.tenant(["notify"])
    stuck_ids = [h.send(stuck, to) for to in _numbers(1, 3)]
    other_ids = [h.send(other, to) for to in _numbers(2, 3)]
    d = h.dispatcher

    assert d.run_once(wait=False) == 6
    assert blocking.entered.wait(10), "the blocking provider was never called"
    eventually(lambda: all(h.row(i).status == "sent" for i in other_ids), timeout=10,
               message="the other provider's rows handed off while twilio blocks")
    assert d.busy_lanes() == ["twilio"]

    later_stuck = h.send(stuck, "+447700900300")
    later_other = [h.send(other, to) for to in _numbers(4, 2)]
    assert d.run_once(wait=False) == 2, "only the rows whose provider's lane is free"
    row = h.row(later_stuck)
    assert (row.status, row.attempts) == ("created", 0), "waiting for a busy lane is no attempt"
    eventually(lambda: all(h.row(i).status == "sent" for i in later_other), timeout=10,
               message="more of the other provider's rows handed off while twilio still blocks")
    assert {h.row(i).status for i in stuck_ids} == {"sending"}

    blocking.release.set()
    assert d.close(timeout=10), "the lane ends once its provider answers"
    assert d.run_once() == 1
    everyone = stuck_ids + other_ids + later_other + [later_stuck]
    assert {h.row(i).status for i in everyone} == {"sent"}
    calls = Counter(m.notification_id for m in twilio.sent + notify.sent)
    assert calls == Counter(everyone), "every notification called exactly once"
    assert {m.notification_id for m in twilio.sent} == set(stuck_ids + [later_stuck])


def test_run_once_waits_for_its_lanes_and_in_process_providers_run_in_the_dispatchers_thread(
        make_notify):
    threads = {}

    def where(message):
        threads[message.notification_id] = threading.current_thread().name
        return SendResult("sent")

    h = make_notify({"twilio": ScriptedProvider("twilio", ("sms",), where),
                     "simulator": InProcess("simulator", ("sms",), where)})
    remote = h.send(h.tenant(["twilio"]))
    local = h.send(h.tenant(["simulator"]))

    assert h.dispatcher.run_once() == 2

    assert {h.row(remote).status, h.row(local).status} == {"sent"}
    assert threads == {remote: "notify-lane-twilio", local: threading.current_thread().name}
    assert h.dispatcher.busy_lanes() == []


class CommitsFail:
    """The notify database, except that armed transactions fail as PostgreSQL restarting
    does: the work is rolled back and an OperationalError raised."""

    def __init__(self, error: type[sa.exc.DBAPIError] = sa.exc.OperationalError):
        self.db = None          # the harness's database, once built
        self.error = error
        self.armed = 0
        self.failed = 0

    def __getattr__(self, name):
        return getattr(self.db, name)

    @contextlib.contextmanager
    def transaction(self):
        with self.db.transaction() as session:
            yield session
            if self.armed:
                self.armed -= 1
                self.failed += 1
                raise self.error("COMMIT", {}, ConnectionError(
                    "server closed the connection unexpectedly"))


def _dispatcher_on(db: CommitsFail, h, **guard) -> Dispatcher:
    return Dispatcher(db, h.service.choose_providers,
                      safeguards=dataclasses.replace(h.dispatcher.guard, record_retry=0.001, **guard))


def test_outcomes_are_kept_and_recorded_when_the_database_comes_back(make_notify):
    db = CommitsFail()

    def answer_then_database_restarts(message):
        db.armed = 3              # the next three transactions, the record among them, fail
        return SendResult("sent", "SM-once")

    twilio = ScriptedProvider("twilio", ("sms",), answer_then_database_restarts)
    h = make_notify({"twilio": twilio})
    db.db = h.db
    nid = h.send(h.tenant(["twilio"]))

    assert _dispatcher_on(db, h).run_once() == 1

    row = h.row(nid)
    assert (row.status, row.provider_reference) == ("sent", "SM-once"), "not outcome unknown"
    assert db.failed == 3 and len(twilio.sent) == 1
    assert h.statuses(nid) == ["sent"]


def test_an_in_process_providers_outcomes_are_kept_too(make_notify):
    db = CommitsFail()

    def answer_then_database_restarts(message):
        db.armed = 2
        return SendResult("delivered")

    simulator = InProcess("simulator", ("sms",), answer_then_database_restarts)
    h = make_notify({"simulator": simulator})
    db.db = h.db
    nid = h.send(h.tenant(["simulator"]))

    _dispatcher_on(db, h).run_once()

    assert h.row(nid).status == "delivered" and db.failed == 2 and len(simulator.sent) == 1
    assert h.statuses(nid) == ["sent", "delivered"]


def test_after_half_the_stale_time_the_outcome_is_left_to_the_sweeper(make_notify):
    db = CommitsFail()

    def answer_then_database_stays_down(message):
        db.armed = 10_000
        return SendResult("sent")

    twilio = ScriptedProvider("twilio", ("sms",), answer_then_database_stays_down)
    h = make_notify({"twilio": twilio})
    db.db = h.db
    nid = h.send(h.tenant(["twilio"]))

    with pytest.raises(sa.exc.OperationalError):
        _dispatcher_on(db, h, stale_after=dt.timedelta(seconds=0.2)).run_once()

    assert db.failed > 1, "tried again before giving up"
    row = h.row(nid)
    assert (row.status, row.handoff_at is not None) == ("sending", True)
    assert len(twilio.sent) == 1


def test_an_error_that_is_not_an_outage_is_not_retried(make_notify):
    db = CommitsFail(error=sa.exc.IntegrityError)

    def answer_then_a_bug(message):
        db.armed = 1
        return SendResult("sent")

    h = make_notify({"twilio": ScriptedProvider("twilio", ("sms",), answer_then_a_bug)})
    db.db = h.db
    h.send(h.tenant(["twilio"]))

    with pytest.raises(sa.exc.IntegrityError):
        _dispatcher_on(db, h).run_once()
    assert db.failed == 1
