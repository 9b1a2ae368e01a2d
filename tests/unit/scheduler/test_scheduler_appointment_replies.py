"""What a team and inbound see of appointments: ``GET /api/appointments`` (filters, pages,
tenant scope), the internal look-up a reply is matched with, and a patient's rearrange."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from shared import events
from shared.db import utcnow

TEMPLATE_ID = str(uuid.uuid4())
DAY = (utcnow() + dt.timedelta(days=20)).replace(hour=9, minute=30, second=0, microsecond=0)


@pytest.fixture
def tenant(new_tenant):
    return new_tenant("bae-abertawe")


@pytest.fixture
def book(client, tenant):
    campaign = client.post("/api/campaigns", headers=tenant.headers(), json={
        "name": "Renal clinic", "kind": "appointment", "template_id": TEMPLATE_ID,
        "channel": "sms"}).get_json()["id"]

    def _book(reference: str, *, days: int = 0, phone: str = "07700 900123",
              language: str | None = "en"):
        resp = client.post("/api/appointments", headers=tenant.headers(), json={
            "external_reference": reference, "campaign_id": campaign, "phone": phone,
            "language": language, "starts_at": (DAY + dt.timedelta(days=days)).isoformat()})
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()
    return _book


def listed(client, tenant, query: str = "") -> dict:
    resp = client.get(f"/api/appointments{query}", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_the_team_lists_its_appointments_newest_first_with_what_patients_did(
        book, client, tenant, deliver):
    a, b = book("RENAL-1"), book("RENAL-2", days=1)
    deliver(events.make("appointment.cancelled", tenant.id, appointment_id=b["id"],
                        source="reply"))
    body = listed(client, tenant)
    assert [x["external_reference"] for x in body["appointments"]] == ["RENAL-2", "RENAL-1"]
    assert [(x["status"], x["status_source"]) for x in body["appointments"]] == [
        ("cancelled", "reply"), ("booked", None)]
    assert body["appointments"][1]["reply_code"] == a["reply_code"]


def test_filters_by_status_day_range_and_reference(book, client, tenant, deliver):
    book("RENAL-1")
    second = book("RENAL-2", days=2)
    book("RENAL-3", days=5)
    deliver(events.make("appointment.confirmed", tenant.id, appointment_id=second["id"]))

    def refs(query):
        return sorted(x["external_reference"] for x in listed(client, tenant, query)["appointments"])
    assert refs("?status=confirmed") == ["RENAL-2"]
    assert refs("?status=booked,confirmed") == ["RENAL-1", "RENAL-2", "RENAL-3"]
    assert refs("?status=cancelled") == []
    first_day = DAY.date()
    assert refs(f"?starts_from={first_day + dt.timedelta(days=1)}") == ["RENAL-2", "RENAL-3"]
    assert refs(f"?starts_from={first_day}&starts_to={first_day + dt.timedelta(days=2)}") == [
        "RENAL-1", "RENAL-2"]
    assert refs("?reference=RENAL-3") == ["RENAL-3"]


def test_pages_carry_older_than(book, client, tenant):
    for n in range(3):
        book(f"RENAL-{n}", days=n)
    first = listed(client, tenant, "?page_size=2")
    assert len(first["appointments"]) == 2 and "older_than=" in first["links"]["next"]
    last = listed(client, tenant, f"?page_size=2&older_than={first['appointments'][-1]['id']}")
    assert [x["external_reference"] for x in last["appointments"]] == ["RENAL-0"]
    assert "next" not in last["links"]


@pytest.mark.parametrize("query, field", [
    ("?status=lost", "status"), ("?starts_from=tomorrow", "starts_from"),
    ("?starts_to=2026-13-01", "starts_to"), ("?page_size=0", "page_size"),
    ("?colour=blue", "colour"), ("?older_than=nope", "older_than"),
    ("?starts_from=2026-12-10&starts_to=2026-12-01", "starts_to"),
])
def test_a_bad_filter_is_a_400_naming_it(client, tenant, error_messages, query, field):
    resp = client.get(f"/api/appointments{query}", headers=tenant.headers())
    assert resp.status_code == 400
    assert any(field in m for m in error_messages(resp)), error_messages(resp)


def test_another_tenant_s_appointments_are_never_listed(book, client, tenant, new_tenant):
    book("RENAL-1")
    other = new_tenant("hywel-dda")
    assert listed(client, other)["appointments"] == []
    assert listed(client, other, "?reference=RENAL-1")["appointments"] == []


def test_the_list_is_in_the_openapi_document(client):
    spec = client.get("/openapi.json").get_json()
    params = {p["name"] for p in spec["paths"]["/api/appointments"]["get"]["parameters"]}
    assert {"status", "starts_from", "starts_to", "reference", "older_than",
            "page_size"} <= params


def admin(scheduler) -> dict:
    return {"Authorization": f"Bearer {scheduler.runtime.settings.admin_token}"}


def test_inbound_s_look_up_gives_the_number_s_live_appointments_and_recorded_language(
        book, client, tenant, scheduler, deliver, new_tenant):
    a, b = book("RENAL-1"), book("RENAL-2", days=1)
    gone = book("RENAL-3", days=2)
    deliver(events.make("appointment.cancelled", tenant.id, appointment_id=gone["id"]))
    book("RENAL-9", phone="07700 900999")
    other = new_tenant("hywel-dda")
    theirs = client.post("/api/campaigns", headers=other.headers(), json={
        "name": "Clinic", "kind": "appointment", "template_id": TEMPLATE_ID,
        "channel": "sms"}).get_json()["id"]
    assert client.post("/api/appointments", headers=other.headers(), json={
        "external_reference": "HD-1", "campaign_id": theirs, "phone": "07700 900123",
        "starts_at": DAY.isoformat()}).status_code == 201

    resp = client.get(f"/internal/tenants/{tenant.id}/citizens?phone=07700900123",
                      headers=admin(scheduler))
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["language"] == "en", "the patient's, the appointments agreeing"
    assert [(x["external_reference"], x["reply_code"]) for x in body["appointments"]] == [
        ("RENAL-1", a["reply_code"]), ("RENAL-2", b["reply_code"])]


def test_the_look_up_answers_for_an_unknown_number_and_needs_the_admin_token(
        client, tenant, scheduler):
    url = f"/internal/tenants/{tenant.id}/citizens?phone=07700900555"
    assert client.get(url, headers=admin(scheduler)).get_json() == {
        "phone": "+447700900555", "language": None, "subscriber_language": None,
        "appointments": []}
    assert client.get(url, headers=tenant.headers()).status_code in (401, 403)


def test_a_subscriber_s_language_is_the_recorded_one(book, client, tenant, scheduler):
    client.post("/api/subscribers", headers=tenant.headers(),
                json=[{"phone": "07700 900123", "language": "cy"}])
    book("RENAL-1", language="en")
    body = client.get(f"/internal/tenants/{tenant.id}/citizens?phone=07700900123",
                      headers=admin(scheduler)).get_json()
    assert (body["language"], body["subscriber_language"]) == ("cy", "cy")


def test_a_patient_s_rearrange_request_is_recorded_until_the_board_moves_it(
        book, client, tenant, deliver):
    a = book("RENAL-1")
    deliver(events.make("appointment.rearrange_requested", tenant.id, appointment_id=a["id"],
                        source="reply"))
    body = client.get("/api/appointments/RENAL-1", headers=tenant.headers()).get_json()
    assert (body["status"], body["status_source"]) == ("rearrange_requested", "reply")
    assert [r["status"] for r in body["reminders"]].count("pending") >= 1, \
        "the appointment stands until the board moves it"
    moved = client.patch("/api/appointments/RENAL-1", headers=tenant.headers(), json={
        "starts_at": (DAY + dt.timedelta(days=3)).isoformat()}).get_json()
    assert (moved["status"], moved["status_source"]) == ("booked", "board")
