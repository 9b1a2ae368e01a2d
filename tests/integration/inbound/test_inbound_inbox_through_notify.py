"""The staff inbox on both stacks (embedded; RabbitMQ + PostgreSQL): a question opens a
conversation, a staff answer goes out through notify to the simulator in the citizen's
language and comes back as sent, the conversation is closed, and a new question reopens it."""
from __future__ import annotations

import requests
from notifications_python_client.authentication import create_jwt_token
from twilio.request_validator import RequestValidator

from shared.tenancy import Tenant
from tests.conftest import eventually

TWILIO_TOKEN = "twilio-auth-token-for-tests"
NUMBER = "+447700900997"
CITIZEN = "+447700900112"


def auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


def test_a_question_is_answered_from_the_inbox_in_the_citizen_s_language(platform):
    urls, settings = platform.urls(), platform.settings
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    tenant = requests.post(f"{urls['notify']}/admin/tenants", headers=admin, json={
        "name": "Cyngor Sir Penfro", "slug": "penfro", "default_language": "cy"}).json()
    r = requests.patch(f"{urls['notify']}/admin/tenants/{tenant['id']}", headers=admin, json={
        "inbound_numbers": [NUMBER], "quiet_hours": None,
        "provider_credentials": {"twilio": {"account_sid": "ACtest",
                                            "auth_token": TWILIO_TOKEN, "from_number": NUMBER}}})
    assert r.status_code == 200, r.text
    key = auth(tenant["api_key"])

    def replicated():
        with platform.inbound.runtime.db.read() as session:
            row = session.get(Tenant, tenant["id"])
            return row is not None and NUMBER in row.config.get("inbound_numbers", [])
    eventually(replicated, message="tenant replicated to inbound")

    sids = iter(f"SM{n:032d}" for n in range(1, 10))

    def text(body: str) -> None:
        form = {"MessageSid": next(sids), "From": CITIZEN, "To": NUMBER, "Body": body}
        url = settings.public_url("inbound") + "/webhooks/twilio/sms"
        r = requests.post(f"{urls['inbound']}/webhooks/twilio/sms", data=form, headers={
            "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, form)})
        assert r.status_code == 200

    simulator = platform.notify.simulator
    text("ENGLISH")                                   # this citizen reads English
    eventually(lambda: simulator.messages_to(CITIZEN), timeout=90, message="language answer")
    text("Is the tip at Hwlffordd open on Sunday?")

    def open_conversations():
        body = requests.get(f"{urls['inbound']}/api/conversations?status=open",
                            headers=key).json()
        return body["conversations"]
    [conversation] = eventually(open_conversations, message="the question opened a conversation")
    assert (conversation["phone"], conversation["language"]) == (CITIZEN, "en")

    r = requests.post(f"{urls['inbound']}/api/conversations/{conversation['id']}/messages",
                      headers=key, json={"body_cy": "Ydy, o 9 tan 4.",
                                         "body_en": "Yes, from 9 till 4.",
                                         "author": "dai@penfro.gov.uk"})
    assert r.status_code == 201, r.text
    answer_id = r.json()["id"]
    [answer] = eventually(lambda: [m for m in simulator.messages_to(CITIZEN)
                                   if "9 till 4" in m.body or "9 tan 4" in m.body],
                          timeout=90, message="the staff answer sent by notify")
    assert answer.body == "Yes, from 9 till 4."

    def answer_sent():
        body = requests.get(f"{urls['inbound']}/api/conversations/{conversation['id']}",
                            headers=key).json()
        return [m for m in body["messages"] if m["id"] == answer_id and m["status"] == "sent"]
    eventually(answer_sent, timeout=90, message="notify's notification.sent heard by inbound")

    r = requests.patch(f"{urls['inbound']}/api/conversations/{conversation['id']}", headers=key,
                       json={"status": "closed"})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert open_conversations() == []

    text("And on bank holidays?")
    [reopened] = eventually(open_conversations, message="a new question reopened it")
    assert reopened["id"] == conversation["id"]
    body = requests.get(f"{urls['inbound']}/api/conversations/{conversation['id']}",
                        headers=key).json()
    kinds = [m["kind"] for m in body["messages"] if m["direction"] == "in"]
    assert kinds == ["reply", "reply", "reply"]
    assert [m["body"] for m in body["messages"] if m["kind"] == "staff_answer"] == [
        "Yes, from 9 till 4."]


def test_a_tenant_s_own_service_type_routes_a_text_and_open311_shows_no_staff_answer(platform):
    urls, settings = platform.urls(), platform.settings
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    tenant = requests.post(f"{urls['notify']}/admin/tenants", headers=admin, json={
        "name": "Cyngor Sir Penfro", "slug": "penfro"}).json()
    requests.patch(f"{urls['notify']}/admin/tenants/{tenant['id']}", headers=admin, json={
        "inbound_numbers": [NUMBER], "quiet_hours": None,
        "provider_credentials": {"twilio": {"account_sid": "ACtest",
                                            "auth_token": TWILIO_TOKEN, "from_number": NUMBER}}})
    key = auth(tenant["api_key"])

    def replicated():
        with platform.inbound.runtime.db.read() as session:
            row = session.get(Tenant, tenant["id"])
            return row is not None and NUMBER in row.config.get("inbound_numbers", [])
    eventually(replicated, message="tenant replicated to inbound")
    inbound = urls["inbound"]
    types = requests.get(f"{inbound}/api/service-types", headers=key).json()["service_types"]
    fly = {"code": "fly_tipping", "name": {"cy": "Tipio anghyfreithlon", "en": "Fly-tipping"},
           "keywords": {"cy": ["TIPIO"], "en": ["FLY TIPPING"]}, "group": "street"}
    r = requests.put(f"{inbound}/api/service-types", headers=key,
                     json={"service_types": [*types, fly]})
    assert r.status_code == 200, r.text

    form = {"MessageSid": "SM" + "5" * 32, "From": CITIZEN, "To": NUMBER,
            "Body": "Tipio ger capel Bethel, Heol y Bont"}
    url = settings.public_url("inbound") + "/webhooks/twilio/sms"
    r = requests.post(f"{inbound}/webhooks/twilio/sms", data=form, headers={
        "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, form)})
    assert r.status_code == 200
    [request] = requests.get(f"{inbound}/api/service-requests", headers=key).json()[
        "service_requests"]
    assert request["service_code"] == "fly_tipping"
    [answer] = eventually(lambda: platform.notify.simulator.messages_to(CITIZEN), timeout=90,
                          message="the report acknowledged through notify")
    assert "Tipio anghyfreithlon" in answer.body and request["reference"] in answer.body

    r = requests.patch(f"{inbound}/api/service-requests/{request['reference']}", headers=key,
                       json={"status": "closed", "status_notes": "Mr Jones, cleared 3pm",
                             "public_status_notes": "Cliriwyd / Cleared"})
    assert r.status_code == 200, r.text
    root, q = f"{inbound}/open311/v2", {"jurisdiction_id": "penfro"}
    services = requests.get(f"{root}/services.json", params=q).json()
    assert "fly_tipping" in {s["service_code"] for s in services}
    for ext in ("json", "xml"):
        public = requests.get(f"{root}/requests.{ext}", params=q).text
        assert "Cliriwyd / Cleared" in public
        for personal in ("Mr Jones", "Heol y Bont", "Bethel", CITIZEN[3:]):
            assert personal not in public
    [full] = requests.get(f"{root}/requests/{request['reference']}.json",
                          params={**q, "api_key": tenant["api_key"]}).json()
    assert (full["status_notes"], full["description"]) == ("Mr Jones, cleared 3pm", form["Body"])
