"""Delivery-status callbacks are recorded in the inbox transaction and POSTed after commit,
each with its own retry record: one tenant's failing callback never sends another again.

A real HTTP server stands in for the tenants' endpoints; the sender's clock is a fake one,
so backoff is tested without sleeping.  On SQLite, and on PostgreSQL (SKIP LOCKED claims).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter

import pytest
import sqlalchemy as sa

from services.notify import handlers, status_callbacks
from services.notify.models import Notification, StatusCallback
from services.notify.status_callbacks import Sender, payload
from services.notify.wiring import build
from shared import events, inbox
from shared.inbox import InboxRow
from shared.metrics import METRICS
from shared.tenancy import Tenant
from tests.conftest import _base_settings
from tests.fakes.tenant_endpoints import T0, Clock, TenantEndpoints, World, outcome_event

RETRY_AFTER = dt.timedelta(minutes=5)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def notify(request, tmp_path):
    if request.param == "sqlite":
        settings = _base_settings(tmp_path)
    else:
        settings = _base_settings(tmp_path, database_url=request.getfixturevalue("pg_url"))
    svc = build(settings)
    svc.runtime.migrate()
    yield svc
    svc.runtime.db.dispose()


@pytest.fixture
def endpoints():
    with TenantEndpoints() as fake:
        yield fake


@pytest.fixture
def clock():
    return Clock(T0)


def callbacks_handler(svc, clock):
    """The notify.callbacks queue's handler, as the worker gets it."""
    return inbox.queue_dispatchers(svc.runtime.db, "notify",
                                   handlers.routes(clock=clock))["notify.callbacks"]


def handle_like_the_worker(handler, batch: list[events.Event]) -> None:
    """What shared.bus.Worker._flush does: the batch in one transaction; if it raises,
    each event on its own (a failing one would go to the delay queues)."""
    try:
        handler.batch(batch)
    except Exception:  # noqa: BLE001 - as the worker: isolate the failing event
        for event in batch:
            try:
                handler(event)
            except Exception:  # noqa: BLE001
                pass


def sender(svc, clock, **options) -> Sender:
    return Sender(svc.runtime.db, svc.runtime.box, clock=clock,
                  delay=options.pop("delay", lambda attempt: RETRY_AFTER), **options)


def rows(svc) -> dict[str, StatusCallback]:
    with svc.runtime.db.read() as session:
        return {r.notification_id: r for r in session.scalars(sa.select(StatusCallback))}


def metric(outcome: str) -> float:
    return METRICS.registry.get_sample_value(
        "hysbys_outbound_deliveries_total", {"kind": "status_callback", "outcome": outcome}) or 0.0


def test_one_failing_callback_in_a_batch_never_sends_the_others_again(notify, endpoints, clock):
    world = World(notify, endpoints)
    aber = [world.notification("aber") for _ in range(3)]
    bangor = [world.notification("bangor"), world.notification("bangor", "permanent-failure")]
    conwy = world.notification("conwy")                       # no URL: no callback
    failing = aber[1]
    endpoints.answers[failing.id] = 500
    batch = [outcome_event(n) for n in (aber[0], bangor[0], failing, aber[2], conwy, bangor[1])]

    handle_like_the_worker(callbacks_handler(notify, clock), batch)
    assert endpoints.calls == [], "nothing is POSTed inside the inbox transaction"

    send = sender(notify, clock, workers=4)
    send.run_once()
    others = [n.id for n in aber + bangor if n is not failing]
    assert endpoints.count() == Counter({**{nid: 1 for nid in others}, failing.id: 1})
    assert endpoints.count(ok=True) == Counter({nid: 1 for nid in others})

    send.run_once()                        # the failing one is not due yet; nothing else goes
    clock.advance(RETRY_AFTER - dt.timedelta(seconds=1))
    send.run_once()
    assert len(endpoints.calls) == 5
    recorded = rows(notify)
    assert recorded[failing.id].attempts == 1 and recorded[failing.id].last_error == "HTTP 500"
    assert recorded[failing.id].next_attempt_at == T0 + RETRY_AFTER

    del endpoints.answers[failing.id]      # the tenant's endpoint recovers
    clock.advance(dt.timedelta(seconds=1))
    send.run_once()
    send.run_once()
    assert endpoints.count(ok=True) == Counter({nid: 1 for nid in others + [failing.id]})
    assert endpoints.count(ok=False) == Counter({failing.id: 1})
    assert conwy.id not in rows(notify)
    assert all(r.delivered_at is not None and r.given_up_at is None for r in rows(notify).values())

    # GOV.UK Notify's body, built from the notification at send time; each tenant's path and token
    for nid, _status, path, auth in endpoints.calls:
        slug = "aber" if any(nid == n.id for n in aber) else "bangor"
        assert path == f"/{slug}" and auth == f"Bearer token-of-{slug}-0123456789"
    with notify.runtime.db.read() as session:
        expected = payload(session.get(Notification, bangor[1].id))
    sent = [json.loads(r.body) for r in endpoints.requests if json.loads(r.body)["id"] == bangor[1].id]
    assert sent == [expected] and expected["status"] == "permanent-failure"
    assert endpoints.problems == []


def test_a_redelivered_event_records_nothing_new_and_sends_nothing_again(notify, endpoints, clock):
    world = World(notify, endpoints)
    notes = [world.notification("aber"), world.notification("bangor")]
    batch = [outcome_event(n) for n in notes]
    handler = callbacks_handler(notify, clock)
    send = sender(notify, clock)

    handler.batch(batch + batch[:1])           # one event twice in the batch
    send.run_once()
    handler.batch(batch)                       # redelivered: the inbox drops it
    handler(batch[1])
    # the same outcome published again under a new event id (a replayed outcome):
    # the callback's id is (notification, status), so no second row either
    handler.batch([outcome_event(n) for n in notes])
    clock.advance(dt.timedelta(days=1))
    send.run_once()

    assert endpoints.count() == Counter({n.id: 1 for n in notes})
    with notify.runtime.db.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(StatusCallback)) == 2


def test_only_tenants_with_a_url_and_final_outcomes_are_claimed_or_recorded(notify, endpoints, clock):
    world = World(notify, endpoints)
    hooked, quiet = world.notification("aber"), world.notification("conwy")
    sent = world.notification("bangor", "sent")
    batch = [outcome_event(hooked), outcome_event(quiet),
             events.make("notification.delivered", sent.tenant_id, notification_id=sent.id,
                         status="sent", channel="sms")]
    callbacks_handler(notify, clock).batch(batch)
    with notify.runtime.db.read() as session:
        claimed = session.scalars(sa.select(InboxRow.event_id)).all()
    assert claimed == [str(batch[0].id)]     # no inbox row for the tenant without a URL
    assert list(rows(notify)) == [hooked.id]


def test_a_refused_callback_is_not_retried(notify, endpoints, clock, caplog):
    world = World(notify, endpoints)
    refused, fine = world.notification("aber"), world.notification("aber")
    endpoints.answers[refused.id] = 400
    callbacks_handler(notify, clock).batch([outcome_event(refused), outcome_event(fine)])
    before = metric("refused")
    send = sender(notify, clock)
    with caplog.at_level(logging.WARNING, logger="shared.deliveries"):
        send.run_once()
    for _ in range(3):
        clock.advance(dt.timedelta(hours=1))
        send.run_once()
    assert endpoints.count() == Counter({refused.id: 1, fine.id: 1})
    row = rows(notify)[refused.id]
    assert row.given_up_at == T0 and row.delivered_at is None and row.last_error == "refused: HTTP 400"
    assert metric("refused") == before + 1
    assert "not retried" in caplog.text


@pytest.mark.parametrize("failure", [503, 408, 429, "connection"])
def test_a_callback_is_retried_with_backoff_then_given_up_and_counted(notify, endpoints, clock,
                                                                      caplog, failure):
    world = World(notify, endpoints)
    n = world.notification("aber")
    if failure == "connection":
        with notify.runtime.db.transaction() as session:     # a port nothing listens on
            tenant = session.get(Tenant, n.tenant_id)
            closed = endpoints.url.rsplit(":", 1)[0] + ":9/status"
            tenant.config = {**tenant.config, "delivery_status_url": closed}
    else:
        endpoints.answers[n.id] = failure
    callbacks_handler(notify, clock).batch([outcome_event(n)])
    waits = []

    def delay(attempt: int) -> dt.timedelta:
        waits.append(attempt)
        return dt.timedelta(minutes=attempt)

    send = sender(notify, clock, delay=delay, max_attempts=3)
    before = metric("given_up")
    with caplog.at_level(logging.WARNING, logger="shared.deliveries"):
        for _ in range(6):
            send.run_once()
            clock.advance(dt.timedelta(hours=1))
    row = rows(notify)[n.id]
    assert row.attempts == 3 and row.given_up_at is not None and row.delivered_at is None
    assert waits == [1, 2]                 # a wait after each failure but the last
    assert len(endpoints.calls) == (0 if failure == "connection" else 3)
    assert metric("given_up") == before + 1
    assert "given up after 3 attempts" in caplog.text


def test_a_callback_whose_url_went_or_notification_went_is_dropped(notify, endpoints, clock):
    world = World(notify, endpoints)
    gone, unhooked = world.notification("aber"), world.notification("bangor")
    callbacks_handler(notify, clock).batch([outcome_event(gone), outcome_event(unhooked)])
    with notify.runtime.db.transaction() as session:
        session.delete(session.get(Notification, gone.id))     # past retention
        tenant = session.get(Tenant, unhooked.tenant_id)
        tenant.config = {**tenant.config, "delivery_status_url": None}
    sender(notify, clock).run_once()
    assert endpoints.calls == []
    recorded = rows(notify)
    assert recorded[gone.id].last_error == "notification gone"
    assert recorded[unhooked.id].last_error == "no delivery-status URL"
    assert all(r.given_up_at == T0 for r in recorded.values())


def test_delivered_and_given_up_callbacks_are_forgotten_after_three_days(notify, endpoints, clock):
    world = World(notify, endpoints)
    done, refused, pending = (world.notification("aber") for _ in range(3))
    endpoints.answers[refused.id] = 404
    handler = callbacks_handler(notify, clock)
    handler.batch([outcome_event(done), outcome_event(refused)])
    sender(notify, clock).run_once()
    handler.batch([outcome_event(pending)])
    assert status_callbacks.forget_done(notify.runtime.db, now=T0 + dt.timedelta(days=2)) == 0
    assert status_callbacks.forget_done(notify.runtime.db, now=T0 + dt.timedelta(days=4)) == 2
    assert list(rows(notify)) == [pending.id]
