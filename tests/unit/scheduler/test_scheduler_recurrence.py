"""Recurrence in Europe/London: clock changes neither skip nor double a reminder, and
bank-holiday and Christmas moves land where the council says."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.scheduler import campaigns
from services.scheduler.models import Campaign, Occurrence, Round
from services.scheduler.planner import HORIZON, REPLAN_EVERY
from services.scheduler.recurrence import (
    LONDON,
    Calendar,
    QuietHours,
    describe_date,
    local_instant,
    reminder_at,
    shift_local,
)
from services.scheduler.ticker import Ticker
from shared.tenancy import Tenant

D = dt.date.fromisoformat
T = dt.time.fromisoformat


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


# 2026: summer time starts Sunday 29 March (01:00 GMT -> 02:00 BST) and
# ends Sunday 25 October (02:00 BST -> 01:00 GMT).
@pytest.mark.parametrize("collection, days_before, at, expected_utc", [
    ("2026-03-28", 1, "18:00", "2026-03-27T18:00"),   # Friday evening, still GMT
    ("2026-03-29", 1, "18:00", "2026-03-28T18:00"),   # Saturday evening before the change
    ("2026-03-30", 1, "18:00", "2026-03-29T17:00"),   # Sunday evening, first day of BST
    ("2026-03-31", 1, "18:00", "2026-03-30T17:00"),
    ("2026-03-29", 0, "01:30", "2026-03-29T01:30"),   # 01:30 never happens: goes at 02:30 BST
    ("2026-03-29", 0, "02:30", "2026-03-29T01:30"),   # the same instant, named the BST way
    ("2026-03-29", 0, "07:00", "2026-03-29T06:00"),
    ("2026-10-25", 1, "18:00", "2026-10-24T17:00"),   # Saturday evening, still BST
    ("2026-10-26", 1, "18:00", "2026-10-25T18:00"),   # Sunday evening, back on GMT
    ("2026-10-27", 1, "18:00", "2026-10-26T18:00"),
    ("2026-10-25", 0, "01:30", "2026-10-25T00:30"),   # 01:30 happens twice: the first one
    ("2026-10-25", 0, "07:00", "2026-10-25T07:00"),
    ("2026-12-25", 2, "18:00", "2026-12-23T18:00"),
])
def test_a_reminder_goes_at_its_london_wall_time_across_both_clock_changes(
        collection, days_before, at, expected_utc):
    when = reminder_at(D(collection), days_before, T(at))
    assert when == utc(expected_utc)
    if at not in ("01:30", "02:30"):
        assert when.astimezone(LONDON).time() == T(at)


@pytest.mark.parametrize("first, last", [("2026-03-22", "2026-04-05"),
                                         ("2026-10-18", "2026-11-01")])
def test_a_daily_round_has_one_reminder_per_day_through_a_clock_change(first, last):
    calendar = Calendar.of("FREQ=DAILY", D("2026-01-01"))
    days = [d for d, _moved in calendar.dates(D(first), D(last))]
    assert len(days) == len(set(days)) == (D(last) - D(first)).days + 1
    reminders = [reminder_at(d, 1, T("18:00")) for d in days]
    assert all(r.astimezone(LONDON).hour == 18 for r in reminders)
    gaps = {(b - a).total_seconds() / 3600 for a, b in zip(reminders, reminders[1:], strict=False)}
    assert gaps == {23.0, 24.0} or gaps == {24.0, 25.0}


def test_an_appointments_wall_time_is_kept_a_week_earlier_across_a_clock_change():
    appointment = local_instant(D("2026-04-02"), T("09:30"))   # BST
    assert shift_local(appointment, 7).astimezone(LONDON).isoformat() == \
        "2026-03-26T09:30:00+00:00"                           # GMT, same wall time


def test_the_week_after_a_bank_holiday_shifts_by_a_day():
    # Easter Monday 2026-04-06: Monday's collection goes on Tuesday, Tuesday's on Wednesday...
    shift = [{"from": f"2026-04-{d:02d}", "to": f"2026-04-{d + 1:02d}"} for d in range(6, 11)]
    expected = {"MO": "2026-04-07", "TU": "2026-04-08", "WE": "2026-04-09",
                "TH": "2026-04-10", "FR": "2026-04-11"}
    for day, moved_to in expected.items():
        start = {"MO": "2026-01-05", "TU": "2026-01-06", "WE": "2026-01-07",
                 "TH": "2026-01-08", "FR": "2026-01-09"}[day]
        calendar = Calendar.of(f"FREQ=WEEKLY;BYDAY={day}", D(start), moves=shift)
        week = calendar.dates(D("2026-04-05"), D("2026-04-12"))
        assert [(d.isoformat(), m.isoformat() if m else None) for d, m in week] == [
            (moved_to, (D(moved_to) - dt.timedelta(days=1)).isoformat())]
        # the week after is back to normal
        assert calendar.dates(D("2026-04-13"), D("2026-04-19"))[0][1] is None


def test_a_move_is_found_even_when_its_usual_date_is_outside_the_range_asked_for():
    calendar = Calendar.of("FREQ=WEEKLY;BYDAY=TH", D("2026-12-03"),
                           moves=[{"from": "2026-12-31", "to": "2027-01-02"}])
    assert calendar.dates(D("2027-01-01"), D("2027-01-03")) == [(D("2027-01-02"), D("2026-12-31"))]
    assert calendar.dates(D("2026-12-28"), D("2027-01-01")) == []


def test_dates_are_described_in_welsh_and_english():
    assert describe_date(D("2026-12-24")) == {
        "collection_date": "2026-12-24", "collection_day_en": "Thursday",
        "collection_date_en": "Thursday 24 December", "collection_day_cy": "dydd Iau",
        "collection_date_cy": "dydd Iau 24 Rhagfyr"}


@pytest.mark.parametrize("wall, quiet", [("20:59", False), ("21:00", True), ("02:00", True),
                                        ("07:59", True), ("08:00", False)])
def test_quiet_hours_span_midnight(wall, quiet):
    hours = QuietHours.of({"start": "21:00", "end": "08:00"})
    assert hours.contains(local_instant(D("2026-06-01"), T(wall))) is quiet


def test_a_time_in_quiet_hours_moves_to_the_next_morning_in_local_time():
    hours = QuietHours.of({"start": "21:00", "end": "08:00"})
    late = local_instant(D("2026-03-28"), T("22:00"))          # GMT evening
    assert hours.next_end(late) == utc("2026-03-29T07:00")      # 08:00 BST next morning
    assert QuietHours.of(None) is None


# -- planning as the ticker does it: lazily, in chunks, never twice ----------------

rules = st.sampled_from(["FREQ=WEEKLY;BYDAY=MO", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
                         "FREQ=WEEKLY;BYDAY=SA,SU", "FREQ=DAILY", "FREQ=MONTHLY;BYDAY=1FR",
                         "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU;COUNT=20"])


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=rules, start=st.dates(D("2026-01-01"), D("2027-12-31")),
       days_before=st.integers(0, 2), at=st.sampled_from(["18:00", "01:30", "07:15", "23:30"]),
       # a tick at most a horizon (14 days) after the last: no downtime in this test
       steps=st.lists(st.integers(1, 14 * 24), min_size=1, max_size=12),
       skip=st.sets(st.integers(0, 60), max_size=5))
def test_planning_in_any_chunks_gives_each_collection_exactly_one_reminder(
        scheduler, rule, start, days_before, at, steps, skip):
    db = scheduler.runtime.db
    calendar = Calendar.of(rule, start)
    exdates = [d for n, (d, _m) in enumerate(calendar.dates(start, start + dt.timedelta(days=90)))
               if n in skip]
    campaign_id = seed(db, rule, start, exdates, days_before, at)
    ticker = Ticker(db)
    now = began = local_instant(start, T("12:00")) - dt.timedelta(days=10)   # set up then
    for hours in steps:
        now += dt.timedelta(hours=hours)
        ticker.plan_ahead(now, force=True)
    with db.read() as session:
        planned = session.execute(sa.select(Occurrence.occurrence_key, Occurrence.due_at).where(
            Occurrence.campaign_id == campaign_id)).all()
        planned_until = session.scalar(sa.select(Campaign.planned_until).where(
            Campaign.id == campaign_id))
    keys = [k for k, _due in planned]
    assert len(keys) == len(set(keys))
    # planning is lazy: the horizon (now + 14 days) is pushed on only once it is a day
    # short, so what must be planned is everything up to where the ticker got to, and
    # that is never less than now + 13 days
    if planned_until.tzinfo is None:
        planned_until = planned_until.replace(tzinfo=dt.UTC)
    assert planned_until >= now + HORIZON - REPLAN_EVERY
    horizon_end = planned_until
    expected = {f"A:{d.isoformat()}" for d, _m in Calendar.of(rule, start, exdates).dates(
        start, start + dt.timedelta(days=400))
        if began < reminder_at(d, days_before, T(at)) <= horizon_end}
    assert set(keys) == expected
    for key, due in planned:
        day = D(key[2:])
        assert due == reminder_at(day, days_before, T(at))
        assert due.astimezone(LONDON).date() == day - dt.timedelta(days=days_before) or \
            at == "01:30"


def seed(db, rule: str, start: dt.date, exdates, days_before: int, at: str) -> str:
    tenant_id = str(uuid.uuid4())
    with db.transaction() as session:
        session.add(Tenant(id=tenant_id, slug=f"t-{tenant_id[:8]}", name="T",
                           config={"quiet_hours": None}))
        session.add(Round(id=str(uuid.uuid4()), tenant_id=tenant_id, code="A", name="A",
                          rrule=rule, start=start, exdates=[d.isoformat() for d in exdates],
                          moves=[], description={}, personalisation={}))
        session.flush()
        campaign = campaigns.create(session, tenant_id, {
            "name": "p", "kind": "collection", "template_id": uuid.uuid4(), "channel": "sms",
            "audience": {}, "personalisation": {}, "urgent": False,
            "schedule": {"days_before": days_before, "at": at}}, local_instant(
                start, T("12:00")) - dt.timedelta(days=10))
        campaign.planned_until = None
    return campaign.id
