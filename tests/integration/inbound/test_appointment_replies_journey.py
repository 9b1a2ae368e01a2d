"""The right appointment, on both stacks (embedded; RabbitMQ + PostgreSQL): a patient with
two appointments is reminded of A; the reminder's reply code travels scheduler → notify →
inbound; a reply with B's code cancels B and not A; a code that is neither cancels nothing
and is answered, in the patient's language, through notify."""
from __future__ import annotations

import datetime as dt

import requests
from notifications_python_client.authentication import create_jwt_token
from twilio.request_validator import RequestValidator

from services.inbound.replies import find_conversation
from shared.tenancy import Tenant
from tests.conftest import eventually

TWILIO_TOKEN = "twilio-auth-token-for-tests"
NUMBER = "+447700900997"
PATIENT = "+447700900111"          # the simulator delivers to it
TEMPLATE = {"name": "Renal reminder", "type": "sms", "body": {
    "cy": "Apwyntiad arennol ((appointment_date_cy)) am ((appointment_time)). "
          "I ganslo, tecstiwch CANSLO ((reply_code)).",
    "en": "Renal appointment ((appointment_date_en)) at ((appointment_time)). "
          "To cancel, text CANCEL ((reply_code))."}}


def auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


def text_in(platform, body: str, sid: str) -> None:
    settings = platform.settings
    form = {"MessageSid": sid, "From": PATIENT, "To": NUMBER, "Body": body}
    url = settings.public_url("inbound") + "/webhooks/twilio/sms"
    r = requests.post(f"{platform.urls()['inbound']}/webhooks/twilio/sms", data=form, headers={
        "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, form)})
    assert r.status_code == 200, r.text


def test_a_reply_with_b_s_code_after_a_reminder_for_a_cancels_b_and_an_unknown_code_nothing(
        platform):
    urls, settings = platform.urls(), platform.settings
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    tenant = requests.post(f"{urls['notify']}/admin/tenants", headers=admin, json={
        "name": "Bwrdd Iechyd Bae Abertawe", "slug": "bae-abertawe"}).json()
    r = requests.patch(f"{urls['notify']}/admin/tenants/{tenant['id']}", headers=admin, json={
        "inbound_numbers": [NUMBER], "quiet_hours": None,
        "provider_credentials": {"twilio": {"account_sid": "ACtest",
                                            "auth_token": TWILIO_TOKEN, "from_number": NUMBER}}})
    assert r.status_code == 200, r.text
    revision = r.json()["revision"]

    def replicated(service):
        with service.runtime.db.read() as session:
            row = session.get(Tenant, tenant["id"])
            return row is not None and row.revision >= revision
    eventually(lambda: replicated(platform.inbound) and replicated(platform.scheduler),
               message="tenant replicated to inbound and the scheduler")
    key = auth(tenant["api_key"])

    template = requests.post(f"{urls['notify']}/api/templates", json=TEMPLATE, headers=key)
    assert template.status_code == 201, template.text
    campaign = requests.post(f"{urls['scheduler']}/api/campaigns", headers=key, json={
        "name": "Renal clinic", "kind": "appointment", "template_id": template.json()["id"],
        "channel": "sms", "urgent": True, "sender": NUMBER})
    assert campaign.status_code == 201, campaign.text

    now = dt.datetime.now(dt.UTC)
    # A is reminded now (an hour before it starts); B, in ten days, not yet
    a = requests.post(f"{urls['scheduler']}/api/appointments", headers=key, json={
        "external_reference": "RENAL-A1", "campaign_id": campaign.json()["id"],
        "phone": "07700 900111", "language": "en",
        "starts_at": (now + dt.timedelta(hours=1, seconds=2)).isoformat(),
        "offsets": [{"days_before": 0, "hours_before": 1}]})
    assert a.status_code == 201, a.text
    b = requests.post(f"{urls['scheduler']}/api/appointments", headers=key, json={
        "external_reference": "RENAL-B2", "campaign_id": campaign.json()["id"],
        "phone": "07700 900111", "language": "en",
        "starts_at": (now + dt.timedelta(days=10)).isoformat()})
    assert b.status_code == 201, b.text
    a_code, b_code = a.json()["reply_code"], b.json()["reply_code"]
    assert a_code != b_code

    simulator = platform.notify.simulator
    [reminder] = eventually(lambda: simulator.messages_to(PATIENT), timeout=90,
                            message="A's reminder sent")
    assert f"CANCEL {a_code}" in reminder.body and "CANSLO" not in reminder.body

    def context():
        with platform.inbound.runtime.db.read() as session:
            row = find_conversation(session, tenant["id"], PATIENT)
            return row if row is not None and row.reply_code else None
    row = eventually(context, timeout=60, message="the reminder became the reply's context")
    assert (row.appointment_id, row.appointment_reference, row.reply_code, row.language) == (
        a.json()["id"], "RENAL-A1", a_code, "en"), "carried by the event, not injected"

    # the reply names B: B is cancelled, A is not
    text_in(platform, f"CANSLO {b_code}", "SM" + "b" * 32)

    def status(reference):
        return requests.get(f"{urls['scheduler']}/api/appointments/{reference}",
                            headers=key).json()["status"]
    eventually(lambda: status("RENAL-B2") == "cancelled", timeout=60, message="B cancelled")
    assert status("RENAL-A1") == "booked"
    answer = eventually(lambda: [m for m in simulator.messages_to(PATIENT)
                                 if "is cancelled" in m.body], timeout=90,
                        message="the cancellation answered")
    assert "wedi'i ganslo" not in answer[0].body, "in English only, as recorded for the patient"

    # a code that is neither: nothing changes, the patient is told, the team has it
    text_in(platform, "CANCEL 0000", "SM" + "c" * 32)
    unknown = eventually(lambda: [m for m in simulator.messages_to(PATIENT)
                                  if "did not recognise the code 0000" in m.body], timeout=90,
                         message="the unknown code answered")
    assert "nid ydym" not in unknown[0].body
    listed = requests.get(f"{urls['scheduler']}/api/appointments?status=cancelled",
                          headers=key).json()["appointments"]
    assert [x["external_reference"] for x in listed] == ["RENAL-B2"]
    assert status("RENAL-A1") == "booked"
    requests_made = requests.get(f"{urls['inbound']}/api/service-requests",
                                 headers=key).json()["service_requests"]
    assert [(r["service_code"], r["description"]) for r in requests_made] == [
        ("question", "CANCEL 0000")]
