"""Appointments: booked, moved and cancelled by the board's system (idempotent on its own
reference), cancelled or confirmed by the citizen's reply, reminded at offsets."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from services.scheduler.models import Occurrence
from services.scheduler.ticker import Ticker, notification_id
from shared import events
from shared.db import utcnow

TEMPLATE_ID = str(uuid.uuid4())
IN_TEN_DAYS = (utcnow() + dt.timedelta(days=10)).replace(hour=9, minute=30, second=0,
                                                          microsecond=0)


@pytest.fixture
def tenant(new_tenant):
    return new_tenant("bae-abertawe")


@pytest.fixture
def campaign_id(client, tenant):
    resp = client.post("/api/campaigns", headers=tenant.headers(), json={
        "name": "Renal clinic", "kind": "appointment", "template_id": TEMPLATE_ID,
        "channel": "sms", "personalisation": {"clinic": "Morriston"}})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


@pytest.fixture
def book(client, tenant, campaign_id):
    def _book(reference: str = "RENAL-0001", **overrides):
        body = {"external_reference": reference, "campaign_id": campaign_id,
                "phone": "07700 900123", "language": "cy", "starts_at": IN_TEN_DAYS.isoformat(),
                "personalisation": {"location": "Ward 3"}}
        body.update(overrides)
        return client.post("/api/appointments", headers=tenant.headers(), json=body)
    return _book


def pending(body: dict) -> list[dict]:
    return [r for r in body["reminders"] if r["status"] == "pending"]


def test_an_appointment_gets_reminders_seven_days_and_one_day_before_at_its_own_time(book):
    resp = book()
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "booked" and len(body["reply_code"]) == 4
    assert [r["due_at"] for r in pending(body)] == [
        (IN_TEN_DAYS - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        for days in (7, 1)] or all(r["due_at"][11:16] in ("08:30", "09:30", "10:30")
                                   for r in pending(body))
    assert len(pending(body)) == 2


def test_posting_the_same_reference_again_updates_instead_of_duplicating(book, client, tenant):
    first = book().get_json()
    again = book(personalisation={"location": "Ward 5"})
    assert again.status_code == 200
    body = again.get_json()
    assert body["id"] == first["id"] and body["reply_code"] == first["reply_code"]
    assert body["personalisation"] == {"location": "Ward 5"}
    assert len(pending(body)) == 2


def test_a_changed_time_moves_the_pending_reminders(book, client, tenant):
    before = pending(book().get_json())
    later = IN_TEN_DAYS + dt.timedelta(days=2)
    resp = client.patch("/api/appointments/RENAL-0001", headers=tenant.headers(),
                        json={"starts_at": later.isoformat()})
    assert resp.status_code == 200, resp.get_json()
    after = pending(resp.get_json())
    assert len(after) == 2
    assert {r["occurrence_key"] for r in after}.isdisjoint({r["occurrence_key"] for r in before})
    assert [r["due_at"][:10] for r in after] == [
        (later - dt.timedelta(days=d)).strftime("%Y-%m-%d") for d in (7, 1)]


def test_an_appointment_booked_three_days_ahead_gets_only_the_one_day_reminder(book):
    body = book(starts_at=(utcnow() + dt.timedelta(days=3)).isoformat()).get_json()
    assert [r["occurrence_key"].rsplit(":", 1)[-1] for r in pending(body)] == ["1d0h"]


def test_cancelling_by_the_board_cancels_the_pending_reminders_and_is_idempotent(
        book, client, tenant, scheduler, outbox_events):
    book()
    for _ in range(2):
        resp = client.delete("/api/appointments/RENAL-0001", headers=tenant.headers())
        assert resp.status_code == 200
    body = resp.get_json()
    assert (body["status"], body["status_source"]) == ("cancelled", "board")
    assert {r["status"] for r in body["reminders"]} == {"cancelled"}
    assert Ticker(scheduler.runtime.db).run_once(now=IN_TEN_DAYS) == 0
    assert outbox_events("notification.requested") == []
    # a changed mind: booking the same reference again plans reminders again
    assert len(pending(book().get_json())) == 2


def test_a_citizens_cancel_reply_cancels_the_reminders(book, client, tenant, deliver):
    appt = book().get_json()
    deliver(events.make("appointment.cancelled", tenant.id, appointment_id=appt["id"],
                        recipient="+447700900123", source="reply"))
    body = client.get("/api/appointments/RENAL-0001", headers=tenant.headers()).get_json()
    assert (body["status"], body["status_source"]) == ("cancelled", "reply")
    assert pending(body) == []


def test_a_citizens_confirm_reply_is_recorded_and_the_reminders_still_go(book, client, tenant,
                                                                         deliver):
    appt = book().get_json()
    deliver(events.make("appointment.confirmed", tenant.id, appointment_id=appt["id"],
                        external_reference="RENAL-0001"))
    body = client.get("/api/appointments/RENAL-0001", headers=tenant.headers()).get_json()
    assert body["status"] == "confirmed" and len(pending(body)) == 2


def test_another_tenants_reply_event_cannot_cancel_an_appointment(book, client, tenant,
                                                                  new_tenant, deliver):
    appt = book().get_json()
    other = new_tenant("caerdydd")
    deliver(events.make("appointment.cancelled", other.id, appointment_id=appt["id"]))
    body = client.get("/api/appointments/RENAL-0001", headers=tenant.headers()).get_json()
    assert body["status"] == "booked"
    assert client.get("/api/appointments/RENAL-0001", headers=other.headers()).status_code == 404


def test_a_reminder_carries_the_appointment_id_and_a_reply_code_for_the_text(
        book, scheduler, outbox_events, campaign_id):
    appt = book().get_json()
    ticker = Ticker(scheduler.runtime.db)
    assert ticker.run_once(now=IN_TEN_DAYS - dt.timedelta(days=7)) == 1
    assert ticker.run_once(now=IN_TEN_DAYS - dt.timedelta(days=7)) == 0
    [sent] = [e["data"] for e in outbox_events("notification.requested")]
    assert sent["appointment_id"] == appt["id"] and sent["recipient"] == "+447700900123"
    assert sent["language"] == "cy"
    # on the event itself, for notify to carry to the sent event inbound reads replies by
    assert (sent["appointment_reference"], sent["reply_code"]) == ("RENAL-0001",
                                                                   appt["reply_code"])
    p = sent["personalisation"]
    assert (p["reply_code"], p["clinic"], p["location"]) == (appt["reply_code"], "Morriston",
                                                             "Ward 3")
    assert p["appointment_date"] == IN_TEN_DAYS.date().isoformat() and p["appointment_time"]
    assert sent["notification_id"] == notification_id(campaign_id, appt["id"],
                                                       sent["occurrence_key"])


def test_two_appointments_for_one_citizen_have_different_reply_codes(book):
    codes = {book(f"RENAL-{n}").get_json()["reply_code"] for n in range(8)}
    assert len(codes) == 8


@pytest.mark.parametrize("change, field", [
    ({"starts_at": "2020-01-01T09:00:00+00:00"}, "starts_at"),
    ({"starts_at": "2099-01-01T09:00:00"}, "starts_at"),
    ({"phone": "banana"}, "phone"),
    ({"phone": None}, "phone"),
    ({"external_reference": "has spaces"}, "external_reference"),
    ({"campaign_id": str(uuid.uuid4())}, "campaign_id"),
    ({"offsets": [{"days_before": 1, "at": "25:00"}]}, "offsets.0.at"),
    ({"offsets": [{"days_before": 0}]}, "offsets.0"),
    ({"colour": "blue"}, "colour"),
])
def test_a_bad_appointment_is_a_400_that_names_the_field(book, error_messages, change, field):
    resp = book(**change)
    assert resp.status_code == 400, resp.get_json()
    assert any(field in m for m in error_messages(resp)), error_messages(resp)


def test_custom_offsets_remind_at_a_time_of_day(book, scheduler):
    body = book(offsets=[{"days_before": 2, "at": "17:00"}, {"days_before": 0, "hours_before": 2}]
                ).get_json()
    keys = [r["occurrence_key"].rsplit(":", 1)[-1] for r in pending(body)]
    assert sorted(keys) == ["0d2h", "2d0h@1700"]
    with scheduler.runtime.db.read() as session:
        dues = sorted(session.scalars(sa.select(Occurrence.due_at).where(
            Occurrence.appointment_id == body["id"])))
    assert dues[-1] == IN_TEN_DAYS - dt.timedelta(hours=2)
