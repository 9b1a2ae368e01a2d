"""Two tickers on one PostgreSQL database share an occurrence and never send twice."""
from __future__ import annotations

import datetime as dt
import json
import threading
import uuid

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from services.scheduler.models import Campaign, Occurrence, Subscriber
from services.scheduler.ticker import Ticker
from services.scheduler.wiring import MIGRATIONS
from shared import events
from shared.crypto import SecretBox
from shared.db import Database, encrypt_with, upgrade, utcnow
from shared.outbox import OutboxRow
from shared.tenancy import Tenant

pytestmark = pytest.mark.integration

AUDIENCE = 2000


@pytest.fixture
def db(pg_url):
    database = Database.connect(pg_url, "scheduler")
    encrypt_with(database.engine, SecretBox(Fernet.generate_key().decode()))   # outbox bodies
    upgrade(database, MIGRATIONS)
    yield database
    database.dispose()


def seed_due_broadcast(db: Database) -> str:
    """A tenant, AUDIENCE subscribers and one broadcast due a second ago."""
    tenant_id, now = str(uuid.uuid4()), utcnow()
    due = now - dt.timedelta(seconds=1)
    with db.transaction() as session:
        session.add(Tenant(id=tenant_id, slug="penfro", name="Penfro", config={"quiet_hours": None}))
        session.execute(sa.insert(Subscriber), [
            {"id": str(uuid.uuid4()), "tenant_id": tenant_id, "phone": f"+447700{900000 + i}",
             "language": ("cy", "en", None)[i % 3], "attributes": {"round": "A"},
             "opted_out": False, "created_at": now, "updated_at": now}
            for i in range(AUDIENCE)])
        campaign = Campaign(id=str(uuid.uuid4()), tenant_id=tenant_id, name="Bins",
                            kind="broadcast", template_id=str(uuid.uuid4()), channel="sms",
                            status="scheduled", send_at=due, audience={"round": "A"},
                            personalisation={}, urgent=False, created_at=now, updated_at=now)
        session.add(campaign)
        session.add(Occurrence(id=str(uuid.uuid4()), tenant_id=tenant_id,
                               campaign_id=campaign.id,
                               occurrence_key=due.strftime("%Y-%m-%dT%H:%M:%SZ"), due_at=due,
                               status="pending", requested=0, skipped=0,
                               created_at=now, updated_at=now))
    return campaign.id


def occurrence_status(db: Database, campaign_id: str) -> Occurrence:
    with db.read() as session:
        return session.scalars(sa.select(Occurrence).where(
            Occurrence.campaign_id == campaign_id)).one()


def test_two_tickers_running_at_once_request_each_notification_exactly_once(db):
    campaign_id = seed_due_broadcast(db)
    start = threading.Barrier(2)
    emitted: dict[str, int] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        # small batches, so the two tickers contend for the occurrence many times
        ticker = Ticker(db, batch=50)
        start.wait()
        total = 0
        deadline = utcnow() + dt.timedelta(seconds=60)
        try:
            while occurrence_status(db, campaign_id).status != "completed" \
                    and utcnow() < deadline:
                total += ticker.run_once()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        emitted[name] = total

    threads = [threading.Thread(target=run, args=(n,)) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)

    assert not errors
    with db.read() as session:
        bodies = session.scalars(sa.select(OutboxRow.body).where(
            OutboxRow.event_type == "notification.requested")).all()
        completed = session.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(
            OutboxRow.event_type == "campaign.occurrence.completed"))
    items = [item["data"] for b in bodies for item in events.expand_body(json.loads(b))]
    ids = [d["notification_id"] for d in items]
    recipients = {d["recipient"] for d in items}
    assert len(ids) == AUDIENCE
    assert len(set(ids)) == AUDIENCE
    assert len(recipients) == AUDIENCE
    assert sum(emitted.values()) == AUDIENCE
    assert completed == 1
    occ = occurrence_status(db, campaign_id)
    assert (occ.status, occ.requested) == ("completed", AUDIENCE)


def seed_collection_evening(db: Database) -> tuple[str, dt.datetime]:
    """Five rounds collected tomorrow, 1,000 households, planned by nobody yet."""
    from services.scheduler.models import Round
    from services.scheduler.recurrence import local_instant

    tenant_id, now = str(uuid.uuid4()), utcnow()
    tomorrow = (now + dt.timedelta(days=1)).date()
    with db.transaction() as session:
        session.add(Tenant(id=tenant_id, slug="penfro", name="Penfro", config={
            "quiet_hours": None, "capacity": {"segments_per_second": 10, "senders": 5}}))
        for code in "ABCDE":
            session.add(Round(id=str(uuid.uuid4()), tenant_id=tenant_id, code=code, name=code,
                              rrule="FREQ=DAILY", start=tomorrow, exdates=[], moves=[],
                              description={}, personalisation={}))
        session.execute(sa.insert(Subscriber), [
            {"id": str(uuid.uuid4()), "tenant_id": tenant_id, "phone": f"+447700{900000 + i}",
             "attributes": {"round": "ABCDE"[i % 5]}, "opted_out": False,
             "created_at": now, "updated_at": now} for i in range(1000)])
        session.add(Campaign(id=str(uuid.uuid4()), tenant_id=tenant_id, name="Bins",
                             kind="collection", template_id=str(uuid.uuid4()), channel="sms",
                             status="scheduled", audience={}, personalisation={}, urgent=False,
                             schedule={"days_before": 1, "at": "18:00"}, fragments=1,
                             created_at=now, updated_at=now))
    return tenant_id, local_instant(tomorrow - dt.timedelta(days=1), dt.time(18))


def test_two_tickers_plan_and_send_an_evening_of_rounds_exactly_once(db):
    _tenant, six = seed_collection_evening(db)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        ticker = Ticker(db, batch=40)
        start.wait()
        try:
            for _ in range(3):          # both plan the same campaign, then both send
                ticker.plan_ahead(six - dt.timedelta(hours=2), force=True)
            for _ in range(50):
                ticker.run_once(now=six)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    with db.read() as session:
        evening = session.scalars(sa.select(Occurrence).where(Occurrence.due_at == six)).all()
        bodies = session.scalars(sa.select(OutboxRow.body).where(
            OutboxRow.event_type == "notification.requested")).all()
        completed = session.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(
            OutboxRow.event_type == "campaign.occurrence.completed"))
    assert sorted(o.occurrence_key[0] for o in evening) == list("ABCDE")
    assert all((o.status, o.requested) == ("completed", 200) for o in evening)
    ids = [item["data"]["notification_id"] for b in bodies
           for item in events.expand_body(json.loads(b))]
    assert len(ids) == len(set(ids)) == 1000
    assert completed == 5
