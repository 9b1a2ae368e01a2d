"""Two tickers on one PostgreSQL database share an occurrence and never send twice."""
from __future__ import annotations

import datetime as dt
import json
import threading
import uuid

import pytest
import sqlalchemy as sa

from services.scheduler.models import Campaign, Occurrence, Subscriber
from services.scheduler.ticker import Ticker
from services.scheduler.wiring import MIGRATIONS
from shared.db import Database, upgrade, utcnow
from shared.outbox import OutboxRow
from shared.tenancy import Tenant

pytestmark = pytest.mark.integration

AUDIENCE = 2000


@pytest.fixture
def db(pg_url):
    database = Database.connect(pg_url, "scheduler")
    upgrade(database, MIGRATIONS)
    yield database
    database.dispose()


def seed_due_broadcast(db: Database) -> str:
    """A tenant, AUDIENCE subscribers and one broadcast due a second ago."""
    tenant_id, now = str(uuid.uuid4()), utcnow()
    due = now - dt.timedelta(seconds=1)
    with db.transaction() as session:
        session.add(Tenant(id=tenant_id, slug="penfro", name="Penfro", config={}))
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
    ids = [json.loads(b)["data"]["notification_id"] for b in bodies]
    recipients = {json.loads(b)["data"]["recipient"] for b in bodies}
    assert len(ids) == AUDIENCE
    assert len(set(ids)) == AUDIENCE
    assert len(recipients) == AUDIENCE
    assert sum(emitted.values()) == AUDIENCE
    assert completed == 1
    occ = occurrence_status(db, campaign_id)
    assert (occ.status, occ.requested) == ("completed", AUDIENCE)
