"""When things go: a reminder through a clock change, quiet hours, and capacity-aware
starts and spreading."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from services.scheduler import campaigns
from services.scheduler.capacity import Capacity, slot
from services.scheduler.models import Occurrence, Round, Subscriber
from services.scheduler.recurrence import LONDON, QuietHours, local_instant
from services.scheduler.ticker import Ticker
from shared.db import utcnow
from shared.tenancy import Tenant

TEMPLATE_ID = str(uuid.uuid4())
QUIET = {"start": "21:00", "end": "08:00"}


def london(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=LONDON).astimezone(dt.UTC)


def seed_collection(db, *, rule="FREQ=DAILY", start="2026-03-20", at="18:00",
                    quiet=None, subscribers=1, rounds=("A",), capacity=None,
                    created="2026-03-20T09:00", fragments=1, window=None) -> str:
    tenant_id, now = str(uuid.uuid4()), utcnow()
    config = {"quiet_hours": quiet, **({"capacity": capacity} if capacity else {})}
    with db.transaction() as session:
        session.add(Tenant(id=tenant_id, slug=f"t-{tenant_id[:8]}", name="T", config=config))
        for code in rounds:
            session.add(Round(id=str(uuid.uuid4()), tenant_id=tenant_id, code=code, name=code,
                              rrule=rule, start=dt.date.fromisoformat(start), exdates=[],
                              moves=[], description={}, personalisation={}))
        session.execute(sa.insert(Subscriber), [
            {"id": str(uuid.UUID(int=n + 1)), "tenant_id": tenant_id,
             "phone": f"+4477009{n:05d}", "attributes": {"round": rounds[n % len(rounds)]},
             "opted_out": False, "created_at": now, "updated_at": now}
            for n in range(subscribers)])
        session.flush()
        campaign = campaigns.create(session, tenant_id, {
            "name": "bins", "kind": "collection", "template_id": TEMPLATE_ID, "channel": "sms",
            "audience": {}, "personalisation": {}, "urgent": False, "window": window,
            "fragments": fragments, "schedule": {"days_before": 1, "at": at}}, london(created))
    return campaign.id


def emitted(outbox_events) -> list[dict]:
    return [e["data"] for e in outbox_events("notification.requested")]


@pytest.mark.parametrize("first, last", [("2026-03-27T12:00", "2026-03-31T12:00"),
                                         ("2026-10-23T12:00", "2026-10-27T12:00")])
def test_a_ticker_running_every_quarter_hour_through_a_clock_change_reminds_once_a_day_at_six(
        scheduler, outbox_events, first, last):
    db = scheduler.runtime.db
    seed_collection(db, start="2026-03-01", created=first)
    ticker = Ticker(db)
    sent_at: dict[str, dt.datetime] = {}
    now = london(first)
    while now < london(last):
        before = len(emitted(outbox_events))
        ticker.run_once(now=now)
        for data in emitted(outbox_events)[before:]:
            assert data["occurrence_key"] not in sent_at, "sent twice"
            sent_at[data["occurrence_key"]] = now
        now += dt.timedelta(minutes=15)
    days = sorted(sent_at)
    assert len(days) == 4                                     # one a day, none skipped
    assert all(sent_at[k].astimezone(LONDON).strftime("%H:%M") == "18:00" for k in days)


def test_a_reminder_time_in_quiet_hours_is_moved_to_the_morning_and_the_move_recorded(
        scheduler, client, new_tenant):
    t = new_tenant("penfro", config={"quiet_hours": QUIET})
    client.post("/api/rounds", headers=t.headers(), json={
        "code": "A", "rrule": "FREQ=WEEKLY;BYDAY=TU", "start": "2026-12-01"})
    resp = client.post("/api/campaigns", headers=t.headers(), json={
        "name": "late", "kind": "collection", "template_id": TEMPLATE_ID, "channel": "sms",
        "schedule": {"days_before": 1, "at": "21:30"}})
    body = resp.get_json()
    assert resp.status_code == 201
    assert any("schedule.at 21:30 is in quiet hours (21:00-08:00)" in w for w in body["warnings"])
    first = body["occurrences"][0]
    assert first["due_at"].endswith("T08:00:00.000000Z")              # GMT in December
    assert first["scheduled_at"].endswith("T21:30:00.000000Z")
    assert first["note"] == "quiet hours 21:00-08:00"


def test_an_urgent_campaign_ignores_quiet_hours(client, new_tenant):
    t = new_tenant("penfro", config={"quiet_hours": QUIET})
    resp = client.post("/api/campaigns", headers=t.headers(), json={
        "name": "flood warning", "template_id": TEMPLATE_ID, "channel": "sms", "urgent": True,
        "send_at": "2099-01-10T23:00:00+00:00"})
    body = resp.get_json()
    assert body["warnings"] == [] and body["occurrences"][0]["due_at"].startswith(
        "2099-01-10T23:00")


@pytest.mark.parametrize("grace_hours, outcome", [(6, "skipped"), (24, "moved")])
def test_a_ticker_back_from_downtime_in_quiet_hours_moves_or_skips_and_says_why(
        scheduler, outbox_events, grace_hours, outcome):
    db = scheduler.runtime.db
    campaign_id = seed_collection(db, quiet=QUIET, start="2099-01-01", created="2099-01-01T09:00")
    ticker = Ticker(db, grace=dt.timedelta(hours=grace_hours))
    # due 18:00 on the 1st; the ticker comes back at 22:00, inside quiet hours
    assert ticker.run_once(now=london("2099-01-01T22:00")) == 0
    with db.read() as session:
        occ = session.scalars(sa.select(Occurrence).where(
            Occurrence.campaign_id == campaign_id,
            Occurrence.occurrence_key == "A:2099-01-02")).one()
    if outcome == "skipped":
        assert (occ.status, occ.skipped) == ("completed", 1)
        assert "quiet hours 21:00-08:00" in occ.note and "grace" in occ.note
    else:
        assert (occ.status, occ.due_at) == ("pending", london("2099-01-02T08:00"))
        assert occ.note.startswith("quiet hours 21:00-08:00: moved from")
        assert ticker.run_once(now=london("2099-01-02T08:00")) >= 1


# -- capacity ----------------------------------------------------------------------

EVENING = local_instant(dt.date(2026, 11, 30), dt.time(18))


@pytest.mark.parametrize("senders, fragments, window, fits, needed, available, starts", [
    (1, 2, None, False, 20000, 10800, "18:00"),                # 5.6 h: quiet hours at 21:00
    (1, 2, {"start": "14:00", "end": "21:00"}, True, 20000, 25200, "15:26"),   # starts early
    (1, 1, None, True, 10000, 10800, "18:00"),
    (5, 2, None, True, 4000, 10800, "18:00"),
    (5, 2, {"start": "18:00", "end": "19:00"}, False, 4000, 3600, "18:00"),
])
def test_a_hundred_thousand_households_need_this_long_on_one_sender_and_on_five(
        senders, fragments, window, fits, needed, available, starts):
    capacity = Capacity(10, senders)
    planned = slot(EVENING, 100_000, fragments, capacity, campaign_window=window,
                   quiet=QuietHours.of(QUIET))
    report = planned.report(100_000, fragments, capacity)
    assert (report["fits"], report["needed_seconds"], report["available_seconds"]) == (
        fits, needed, available)
    assert report["starts_at"][11:16] == starts
    assert ("message" in report) is not fits


def test_a_campaign_that_cannot_fit_its_window_is_flagged_at_setup_with_the_numbers(
        client, new_tenant):
    t = new_tenant("penfro", config={"capacity": {"segments_per_second": 0.1, "senders": 1}})
    client.post("/api/subscribers", headers=t.headers(),
                json=[{"phone": f"0770090000{n}"} for n in range(5)])
    resp = client.post("/api/campaigns", headers=t.headers(), json={
        "name": "too big", "template_id": TEMPLATE_ID, "channel": "sms", "fragments": 3,
        "send_at": "2099-01-10T18:00:00+00:00", "window": {"start": "18:00", "end": "18:01"}})
    body = resp.get_json()
    assert resp.status_code == 201
    cap = body["capacity"]
    assert (cap["fits"], cap["recipients"], cap["fragments"], cap["segments"]) == (
        False, 5, 3, 15)
    assert (cap["needed_seconds"], cap["available_seconds"]) == (150, 60)
    assert any(w.startswith("capacity: 5 recipients x 3 fragments") for w in body["warnings"])


def test_a_running_occurrence_spreads_its_sends_at_the_tenants_rate(scheduler, outbox_events):
    db = scheduler.runtime.db
    seed_collection(db, rule="FREQ=WEEKLY;BYDAY=WE", start="2099-01-07", subscribers=6,
                    rounds=("A", "B"), capacity={"segments_per_second": 1, "senders": 1},
                    fragments=2, created="2099-01-01T09:00",
                    window={"start": "17:00", "end": "18:05"})
    Ticker(db).run_once(now=london("2099-01-06T18:00"))
    sends = sorted((d["not_before"], d["occurrence_key"]) for d in emitted(outbox_events))
    # six recipients x 2 segments at 1 segment/s: 12 s, starting at 18:00; round B goes
    # on where round A stops (one evening shares one capacity)
    assert [s[0][11:19] for s in sends] == [
        "18:00:00", "18:00:02", "18:00:04", "18:00:06", "18:00:08", "18:00:10"]
    assert [s[1][0] for s in sends] == ["A", "A", "A", "B", "B", "B"]


def test_an_occurrence_that_would_overrun_its_window_starts_early(scheduler, outbox_events):
    db = scheduler.runtime.db
    seed_collection(db, rule="FREQ=WEEKLY;BYDAY=WE", start="2099-01-07", subscribers=4,
                    capacity={"segments_per_second": 0.1, "senders": 1}, fragments=10,
                    created="2099-01-01T09:00", window={"start": "17:00", "end": "18:05"})
    ticker = Ticker(db)
    assert ticker.run_once(now=london("2099-01-06T17:58:19")) == 0
    assert ticker.run_once(now=london("2099-01-06T17:58:20")) == 4   # 400 s needed by 18:05
    first = min(d["not_before"] for d in emitted(outbox_events))
    assert first.startswith("2099-01-06T17:58:20")
