"""The operators' figures on RabbitMQ and PostgreSQL: what the broker says about every
queue (depth, consumers, dead letters, retry tiers), and the purge and roll-up on
PostgreSQL's dates and batches."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from services.embedded import Platform
from services.notify import opendata, ops
from services.notify import retention as notify_retention
from services.notify.models import Notification, ReceivedText
from services.notify.wiring import build
from shared import metrics, topology
from shared.metrics import METRICS
from tests.conftest import eventually
from tests.unit.ops.ops_support import add_notifications, add_reply, add_tenant

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def real_platform(real_settings):
    platform = Platform(real_settings)
    platform.migrate()
    platform.start(http=False)
    yield platform
    platform.stop()


def test_every_queue_shows_the_consumers_and_dead_letters_rabbitmq_reports(real_platform):
    bus = real_platform.bus
    with bus.connection() as conn:
        bus.send_to_queue(conn, "scheduler.events.dlq", '{"not": "an event"}', {},
                          message_id=str(uuid.uuid4()))

    def figures():
        queues, retries = metrics.queue_figures(bus)
        by_name = {q["name"]: q for q in queues}
        return (by_name, retries) if by_name["scheduler.events"]["dead_lettered"] == 1 else None

    queues, retries = eventually(figures, message="the dead letter counted")
    for spec in topology.QUEUES:
        assert queues[spec.name]["consumers"] >= 1, spec.name
        assert queues[spec.name]["ready"] is not None
    assert [r["name"] for r in retries] == [topology.delay_queue_name(t)
                                            for t in topology.DELAY_TIERS]
    assert all(r["ready"] == 0 for r in retries)

    metrics.refresh_queue_gauges(bus)
    sample = METRICS.registry.get_sample_value
    assert sample("hysbys_queue_messages", {"queue": "scheduler.events.dlq"}) == 1
    assert sample("hysbys_queue_consumers", {"queue": "inbound.events"}) >= 1
    assert sample("hysbys_queue_messages", {"queue": "hysbys.delay.30s"}) == 0


def test_a_queue_the_broker_does_not_have_is_shown_as_unknown(real_settings):
    svc = build(real_settings)   # nothing declared on this fresh vhost
    queues, _ = metrics.queue_figures(svc.runtime.bus)
    assert {q["ready"] for q in queues} == {None}
    assert ops.alerts({"queues": queues, "providers": [], "outbox": {"oldest_age_seconds": 0},
                       "scheduler": {"lag_seconds": 0, "error": None}}, []) == []


def test_purge_and_roll_up_on_postgresql_keep_the_figures_and_drop_the_people(real_settings):
    svc = build(real_settings)
    svc.runtime.migrate()
    tenant = add_tenant(svc, "pembrokeshire")
    old = NOW - dt.timedelta(days=10)
    add_notifications(svc, tenant, "delivered", 7, created_at=old)
    add_notifications(svc, tenant, "permanent-failure", 3, created_at=old)
    add_reply(svc, tenant, old)
    add_notifications(svc, tenant, "delivered", 2, created_at=NOW - dt.timedelta(days=1))
    deleted = notify_retention.run_once(svc.runtime.db, now=NOW)
    assert deleted == {"notifications": 10, "received_texts": 1, "bulk_jobs": 0}
    with svc.runtime.db.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 2
        assert session.scalar(sa.select(sa.func.count()).select_from(ReceivedText)) == 0
        rows = opendata.rows(session, slug="pembrokeshire", first=old.date(), last=NOW.date())
    assert [(r["date"], r["requested"], r["delivered_rate"], r["replies"], r["final"])
            for r in rows] == [("2026-11-15", 10, 0.7, 1, True), ("2026-11-24", 2, 1.0, 0, False)]
    svc.runtime.db.dispose()
