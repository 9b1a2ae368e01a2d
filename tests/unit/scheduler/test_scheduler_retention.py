"""An appointment (a patient's number, personalisation) and its reminders go once the
tenant's retention period has passed since it took place; the campaign stays."""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from services.scheduler import retention
from services.scheduler.models import Appointment, Campaign, Occurrence

TEMPLATE_ID = str(uuid.uuid4())


def _book(client, tenant, campaign_id: str, reference: str, starts_at: dt.datetime) -> None:
    resp = client.post("/api/appointments", headers=tenant.headers(), json={
        "external_reference": reference, "campaign_id": campaign_id, "phone": "07700 900123",
        "starts_at": starts_at.isoformat(), "personalisation": {"name": "Ceri"}})
    assert resp.status_code in (200, 201), resp.get_json()


def test_appointments_past_retention_go_with_their_reminders_and_later_ones_stay(
        scheduler, client, new_tenant):
    tenant = new_tenant("bae-abertawe", config={"retention_days": 7})
    campaign = client.post("/api/campaigns", headers=tenant.headers(), json={
        "name": "Renal clinic", "kind": "appointment", "template_id": TEMPLATE_ID,
        "channel": "sms"}).get_json()["id"]
    now = dt.datetime.now(dt.timezone.utc)
    for reference in ("OLD", "RECENT", "AHEAD"):
        _book(client, tenant, campaign, reference, now + dt.timedelta(days=10))
    db = scheduler.runtime.db
    with db.transaction() as session:       # as if booked long ago: one took place 9 days ago
        for reference, days in (("OLD", -9), ("RECENT", -2)):
            session.execute(sa.update(Appointment).where(
                Appointment.external_reference == reference).values(
                starts_at=now + dt.timedelta(days=days)))
    with db.read() as session:
        ids = dict(session.execute(sa.select(Appointment.external_reference, Appointment.id)).all())
        assert session.scalar(sa.select(sa.func.count()).where(
            Occurrence.appointment_id == ids["OLD"])) > 0

    deleted = retention.run_once(db, now=now)

    assert deleted == {"appointments": 1}
    with db.read() as session:
        left = set(session.scalars(sa.select(Appointment.external_reference)))
        orphans = session.scalar(sa.select(sa.func.count()).where(
            Occurrence.appointment_id == ids["OLD"]))
        kept_reminders = session.scalar(sa.select(sa.func.count()).where(
            Occurrence.appointment_id == ids["AHEAD"]))
        campaigns = session.scalar(sa.select(sa.func.count()).select_from(Campaign))
    assert left == {"RECENT", "AHEAD"}
    assert orphans == 0 and kept_reminders > 0
    assert campaigns == 1
    assert retention.run_once(db, now=now) == {"appointments": 0}


def test_the_scheduler_worker_runs_the_purge(scheduler):
    names = [getattr(loop, "__name__", "") for loop in scheduler.background(with_ticker=False).loops]
    assert "scheduler-retention" in names
