"""The delivery contract: nothing lost, nothing done twice (both stacks)."""
from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

from services.notify.wiring import MIGRATIONS
from shared import events, inbox, outbox, topology
from shared.bus import Bus, Worker
from shared.db import utcnow
from shared.outbox import OutboxRow, Relay
from shared.runtime import Runtime
from shared.tenancy import Tenant
from tests.conftest import eventually


class CrashAfterPublish(Bus):
    """A relay's bus that 'crashes' after the broker confirmed, before the outbox is marked."""

    def __init__(self, url: str):
        super().__init__(url)
        self.crashes_left = 1

    def publish_batch(self, conn, messages, confirm_timeout: float = 30.0):
        count = super().publish_batch(conn, messages, confirm_timeout)
        if self.crashes_left:
            self.crashes_left -= 1
            raise ConnectionResetError("relay died between publish and mark-sent")
        return count


@pytest.fixture
def runtime(stack_settings):
    rt = Runtime.build(stack_settings, "notify", MIGRATIONS)
    rt.migrate()
    with rt.bus.connection() as conn:
        rt.bus.declare(conn)
    yield rt
    rt.bus.close()
    rt.db.dispose()


def tenant_event(name: str) -> events.Event:
    return events.make("tenant.changed", uuid.uuid4(), slug=name, name=name, revision=1,
                       default_language="cy", config={}, api_keys=[])


def start_counting_worker(rt: Runtime, seen: list):
    def record(event, session):
        seen.append(event.id)
        session.add(Tenant(id=str(event.tenant_id), slug=event.data["slug"],
                           name=event.data["name"], config={}))
    # tenant.changed is bound to inbound.events: consume it there with an inbox
    worker = Worker(rt.bus, {"inbound.events": inbox.dispatcher(
        rt.db, "test-consumer", {"tenant.changed": [record]})})
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    assert worker.ready.wait(10)
    return worker


def test_an_event_written_in_a_rolled_back_transaction_is_never_published(runtime):
    seen: list = []
    worker = start_counting_worker(runtime, seen)
    try:
        with pytest.raises(RuntimeError), runtime.db.transaction() as session:
            outbox.add(session, tenant_event("rolled-back"))
            raise RuntimeError("the domain change failed")
        with runtime.db.transaction() as session:
            outbox.add(session, tenant_event("committed"))
        relay = Relay(runtime.db, runtime.bus)
        with runtime.bus.connection() as conn:
            assert relay.run_once(conn) == 1
        eventually(lambda: _slugs(runtime) == ["committed"], message="committed event consumed")
        assert len(seen) == 1
    finally:
        worker.should_stop = True


def test_a_relay_crash_after_publish_republishes_and_the_inbox_makes_it_a_no_op(runtime):
    seen: list = []
    worker = start_counting_worker(runtime, seen)
    baseline = _duplicates(runtime)
    try:
        event = tenant_event("once")
        with runtime.db.transaction() as session:
            outbox.add(session, event)
        crashing = Relay(runtime.db, CrashAfterPublish(runtime.bus.url))
        with crashing.bus.connection(confirm_each=False) as conn:
            with pytest.raises(ConnectionResetError):
                crashing.run_once(conn)
            with runtime.db.read() as session:
                row = session.scalars(sa.select(OutboxRow)).one()
            assert row.published_at is None, "the crash left the event unmarked"
            assert crashing.run_once(conn) == 1, "the restarted relay publishes it again"
        eventually(lambda: _slugs(runtime) == ["once"], message="first delivery")
        eventually(lambda: _duplicates(runtime) == baseline + 1,
                   message="second delivery deduplicated by the inbox")
        assert seen == [event.id], "the handler ran once for two deliveries"
        with runtime.db.read() as session:
            assert session.scalars(sa.select(sa.func.count()).select_from(Tenant)).one() == 1
    finally:
        worker.should_stop = True


def _slugs(rt: Runtime) -> list[str]:
    with rt.db.read() as session:
        return list(session.scalars(sa.select(Tenant.slug)).all())


def _duplicates(rt: Runtime) -> float:
    from shared.metrics import METRICS

    return METRICS.events_duplicate.labels(consumer="test-consumer")._value.get()


def test_the_relay_claims_through_the_unpublished_index_not_past_every_published_row(runtime):
    # a bin night leaves the outbox full of published rows (kept 24 hours) in front of the
    # few still waiting; the claim must not walk them (it took 0.3 s a batch at 1,000,000)
    relay = Relay(runtime.db, runtime.bus)
    now = utcnow()
    with runtime.db.transaction() as session:
        session.execute(sa.insert(OutboxRow), [
            {"event_id": str(uuid.uuid4()), "event_type": "tenant.changed", "body": "{}",
             "published_at": now if i < 20_000 else None} for i in range(20_100)])
        if runtime.db.dialect == "postgresql":
            session.execute(sa.text("ANALYZE outbox"))
    query = relay.claim_query().compile(runtime.db.engine, compile_kwargs={"literal_binds": True})
    explain = "EXPLAIN " if runtime.db.dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    with runtime.db.read() as session:
        plan = " ".join(str(row[-1]) for row in session.execute(sa.text(explain + str(query))))
    if runtime.db.dialect == "postgresql":
        assert "ix_outbox_unpublished" in plan, plan
    else:   # SQLite: the published_at index holds NULLs in rowid (= seq) order already
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


def test_an_inbox_forgets_event_ids_only_once_no_replay_can_bring_them_back(runtime):
    from shared.inbox import KEEP, InboxRow, cleanup

    now = utcnow()
    ages = [KEEP + dt.timedelta(hours=1)] * 25 + [KEEP - dt.timedelta(hours=1)] * 3
    with runtime.db.transaction() as session:
        session.execute(sa.insert(InboxRow), [
            {"event_id": str(uuid.uuid4()), "consumer": "c", "event_type": "tenant.changed",
             "processed_at": now - age} for age in ages])
    # in batches of 10: three transactions, the last one short
    assert cleanup(runtime.db, now=now, batch=10) == 25
    with runtime.db.read() as session:
        left = session.scalars(sa.select(InboxRow.processed_at)).all()
    assert len(left) == 3
    assert KEEP.days > topology.DLQ_TTL_DAYS      # a dead letter replayed on its last day


def test_every_consuming_worker_runs_the_inbox_cleanup(runtime):
    from shared.runtime import Background

    consuming = Background(runtime, {"inbound.events": lambda event: None}, [])
    publishing_only = Background(runtime, {}, [])
    names = [getattr(loop, "__name__", "") for loop in consuming.loops]
    assert "inbox_cleanup" in names
    assert "inbox_cleanup" not in [getattr(loop, "__name__", "") for loop in
                                   publishing_only.loops]
