"""The handler contract (shared.inbox.Route): every service's routes are typed, agree with
the queues' bindings, and after-commit steps run only once the transaction has committed."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from services.inbound import handlers as inbound_handlers
from services.notify import handlers as notify_handlers
from services.notify.wiring import MIGRATIONS
from services.scheduler import handlers as scheduler_handlers
from shared import events, inbox
from shared.runtime import Runtime
from shared.tenancy import Tenant

SERVICES = {"notify": notify_handlers.routes, "inbound": inbound_handlers.routes,
            "scheduler": scheduler_handlers.routes}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_binding_has_a_route_and_every_route_a_binding(service):
    inbox.check_bindings(service, SERVICES[service]())


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_handler_relies_on_attributes_the_contract_no_longer_reads(service):
    for event_type, handlers in SERVICES[service]().items():
        for handler in handlers:
            if isinstance(handler, inbox.Route):
                continue
            hidden = [a for a in ("many", "relevant", "batch") if hasattr(handler, a)]
            assert not hidden, f"{service} {event_type}: {handler!r} has {hidden}: use a Route"


def test_a_binding_nobody_handles_is_a_start_up_error():
    routes = scheduler_handlers.routes()
    del routes["notification.failed"]
    with pytest.raises(inbox.RoutingError, match="bound but not routed.*notification.failed"):
        inbox.check_bindings("scheduler", routes)
    with pytest.raises(inbox.RoutingError, match="routed but not bound.*audit.recorded"):
        inbox.check_bindings("scheduler", {**scheduler_handlers.routes(),
                                           "audit.recorded": [lambda e, s: None]})


@pytest.fixture
def runtime(embedded_settings):
    rt = Runtime.build(embedded_settings, "notify", MIGRATIONS)
    rt.migrate()
    yield rt
    rt.db.dispose()


def test_after_commit_runs_after_the_commit_with_the_items_and_its_error_undoes_nothing(runtime):
    seen: list = []

    def store(event, session):
        session.add(Tenant(id=str(uuid.uuid4()), slug=event.data["recipient"], name="x",
                           config={}))

    def after(items):
        with runtime.db.read() as session:      # the transaction's rows are visible now
            seen.append((len(items), session.scalar(sa.select(sa.func.count(Tenant.id)))))
        raise RuntimeError("a nudge that fails")

    consumer = inbox.dispatcher(runtime.db, "t", {"notification.sent": [
        inbox.Route(store, after_commit=after)]})
    [batch] = events.batches("notification.sent", uuid.uuid4(), [
        {"notification_id": uuid.uuid4(), "status": "sent", "channel": "sms",
         "recipient": f"+44770090012{i}"} for i in range(3)])
    consumer.batch([batch])
    consumer.batch([batch])      # a redelivery handles nothing, so nothing after either
    assert seen == [(3, 3)]


def test_notify_wakes_its_dispatcher_after_stored_requests_commit(runtime):
    woken: list = []
    routes = notify_handlers.routes(nudge=lambda: woken.append(1))
    [route] = routes["notification.requested"]
    assert route.after_commit is not None and route.many is notify_handlers.on_notifications_requested
    route.after_commit([])
    assert woken == [1]
