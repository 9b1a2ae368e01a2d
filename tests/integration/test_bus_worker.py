"""The worker: batches, one bad event isolated, poison to the DLQ, retries (both stacks)."""
from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa

from services.notify.wiring import MIGRATIONS
from shared import events, inbox, topology
from shared.bus import OutgoingMessage, Worker
from shared.runtime import Runtime
from shared.tenancy import Tenant
from tests.conftest import eventually

QUEUE = "inbound.events"      # bound to tenant.changed


@pytest.fixture
def runtime(stack_settings):
    rt = Runtime.build(stack_settings, "notify", MIGRATIONS)
    rt.migrate()
    with rt.bus.connection() as conn:
        rt.bus.declare(conn)
    yield rt
    rt.bus.close()
    rt.db.dispose()


def tenant_event(slug: str) -> events.Event:
    return events.make("tenant.changed", uuid.uuid4(), slug=slug, name=slug, revision=1,
                       default_language="cy", config={}, api_keys=[])


def store(event, session):
    if event.data["slug"].startswith("bad"):
        raise RuntimeError("this one event cannot be handled")
    session.add(Tenant(id=str(event.tenant_id), slug=event.data["slug"], name="x", config={}))


def start(rt: Runtime, **kwargs) -> Worker:
    worker = Worker(rt.bus, {QUEUE: inbox.dispatcher(rt.db, "t", {"tenant.changed": [store]})},
                    **kwargs)
    threading.Thread(target=worker.run, daemon=True).start()
    assert worker.ready.wait(10)
    return worker


def publish(rt: Runtime, evs: list[events.Event]) -> None:
    with rt.bus.connection() as conn:
        rt.bus.publish(conn, [OutgoingMessage(str(e.id), e.type, e.to_json()) for e in evs])


def slugs(rt: Runtime) -> set[str]:
    with rt.db.read() as session:
        return set(session.scalars(sa.select(Tenant.slug)))


def dlq_depth(rt: Runtime) -> int:
    with rt.bus.connection() as conn:
        return rt.bus.queue_depth(conn, QUEUE + topology.DLQ_SUFFIX)[0]


def test_a_batch_with_one_failing_event_still_stores_all_the_others(runtime):
    worker = start(runtime, batch_size=50)
    try:
        good = [tenant_event(f"t{i}") for i in range(40)]
        publish(runtime, good[:20] + [tenant_event("bad-one")] + good[20:])
        eventually(lambda: slugs(runtime) == {f"t{i}" for i in range(40)},
                   message="all good events stored despite the bad one")
    finally:
        worker.should_stop = True


def test_an_event_delivered_twice_in_one_batch_is_handled_once(runtime):
    worker = start(runtime, batch_size=10, batch_wait=0.5)
    try:
        e = tenant_event("twice")
        publish(runtime, [e, e, tenant_event("other")])
        eventually(lambda: slugs(runtime) == {"twice", "other"}, message="both stored")
    finally:
        worker.should_stop = True


def test_a_poison_message_goes_to_the_dlq_and_the_queue_keeps_flowing(runtime):
    worker = start(runtime)
    try:
        with runtime.bus.connection() as conn:
            runtime.bus.send_to_queue(conn, QUEUE, "{not json", {}, message_id="poison-1")
        publish(runtime, [tenant_event("after-poison")])
        eventually(lambda: slugs(runtime) == {"after-poison"}, message="queue kept flowing")
        eventually(lambda: dlq_depth(runtime) == 1, message="poison dead-lettered")
    finally:
        worker.should_stop = True
