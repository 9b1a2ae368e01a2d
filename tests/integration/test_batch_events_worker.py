"""Batch events through the worker on both stacks: a batch is handled once, a redelivered
batch is a no-op, and an item refused for good is dead-lettered alone while the batch's
other items are handled (nothing lost, nothing twice)."""
from __future__ import annotations

import json
import threading
import uuid

import pytest
import sqlalchemy as sa

from services.notify.wiring import MIGRATIONS
from shared import events, inbox, topology
from shared.bus import OutgoingMessage, PermanentError, Worker, drain_queue
from shared.runtime import Runtime
from shared.tenancy import Tenant
from tests.conftest import eventually

QUEUE = "scheduler.events"     # bound to the notification outcomes
TENANT = uuid.uuid4()


@pytest.fixture
def runtime(stack_settings):
    rt = Runtime.build(stack_settings, "notify", MIGRATIONS)
    rt.migrate()
    with rt.bus.connection() as conn:
        rt.bus.declare(conn)
    yield rt
    rt.bus.close()
    rt.db.dispose()


class Store:
    """Stores each outcome item as a row (a tenant row is handy); 'bad' ones are refused
    for good; counts its calls per notification."""

    def __init__(self):
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, event, session):
        nid = str(event.data["notification_id"])
        with self.lock:
            self.calls[nid] = self.calls.get(nid, 0) + 1
        if event.data["recipient"].startswith("bad"):
            raise PermanentError("this item can never be handled")
        session.add(Tenant(id=nid, slug=event.data["recipient"], name="x", config={}))


def start(rt: Runtime, store: Store, **kwargs) -> Worker:
    worker = Worker(rt.bus, {QUEUE: inbox.dispatcher(rt.db, QUEUE, {"notification.sent": [store]})},
                    **kwargs)
    threading.Thread(target=worker.run, daemon=True).start()
    assert worker.ready.wait(10)
    return worker


def publish(rt: Runtime, evs: list[events.Event]) -> None:
    with rt.bus.connection() as conn:
        rt.bus.publish(conn, [OutgoingMessage(str(e.id), e.type, e.to_json()) for e in evs])


def stored(rt: Runtime) -> set[str]:
    with rt.db.read() as session:
        return set(session.scalars(sa.select(Tenant.slug)))


def sent(recipients: list[str]) -> list[events.Event]:
    return events.batches("notification.sent", TENANT, [
        {"notification_id": uuid.uuid4(), "status": "sent", "channel": "sms", "recipient": r}
        for r in recipients])


def test_a_batch_and_its_redelivery_are_handled_once(runtime):
    store = Store()
    worker = start(runtime, store)
    try:
        [batch] = sent([f"+4477009{i:05d}" for i in range(500)])
        publish(runtime, [batch, batch])
        eventually(lambda: len(stored(runtime)) == 500, message="the batch's 500 items stored")
        eventually(lambda: _idle(runtime), message="queue drained")
        assert set(store.calls.values()) == {1}
    finally:
        worker.should_stop = True


def test_an_item_refused_for_good_is_dead_lettered_alone(runtime):
    store = Store()
    worker = start(runtime, store)
    try:
        good = [f"+4477009{i:05d}" for i in range(60)]
        [batch] = sent(good[:30] + ["bad-number"] + good[30:])
        publish(runtime, [batch])
        eventually(lambda: stored(runtime) == set(good), message="the 60 good items stored")
        eventually(lambda: _dlq(runtime), message="the bad item dead-lettered")
        [dead] = _dlq(runtime)
        body = json.loads(dead)
        assert body["type"] == "notification.sent"
        assert [i["data"]["recipient"] for i in events.expand_body(body)] == ["bad-number"]
        # every good item was committed once, under its own id (the batch's tries rolled back)
        with runtime.db.read() as session:
            claims = set(session.scalars(sa.select(inbox.InboxRow.event_id)))
        assert {str(e.id) for e in batch.expand() if e.data["recipient"] != "bad-number"} <= claims
    finally:
        worker.should_stop = True


def _idle(rt: Runtime) -> bool:
    with rt.bus.connection() as conn:
        return rt.bus.queue_depth(conn, QUEUE) == (0, 0) or \
            rt.bus.queue_depth(conn, QUEUE)[0] == 0


_DEAD: dict = {}


def _dlq(rt: Runtime) -> list:
    """The DLQ's bodies (taken off the queue and kept, so a second look sees them too)."""
    got = _DEAD.setdefault(id(rt), [])
    with rt.bus.connection() as conn:
        for message in drain_queue(rt.bus, conn, QUEUE + topology.DLQ_SUFFIX):
            body = message.body
            got.append(body.decode() if isinstance(body, bytes) else body)
            message.ack()
    return got
