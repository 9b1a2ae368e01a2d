"""A citizen's text answered through notify, on both stacks (embedded, RabbitMQ + PostgreSQL):
the auto-reply and the "your report has been closed" text are real notifications, sent by the
simulator, with the HYS reference in them."""
from __future__ import annotations

import re

import requests
import sqlalchemy as sa
from notifications_python_client.authentication import create_jwt_token
from twilio.request_validator import RequestValidator

from shared.tenancy import Tenant
from tests.conftest import eventually

TWILIO_TOKEN = "twilio-auth-token-for-tests"
NUMBER = "+447700900998"
CITIZEN = "+447700900111"


def auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


def test_a_question_is_answered_and_its_closing_is_texted_through_notify(platform):
    urls, settings = platform.urls(), platform.settings
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    tenant = requests.post(f"{urls['notify']}/admin/tenants", headers=admin, json={
        "name": "Cyngor Sir Penfro", "slug": "penfro"}).json()
    r = requests.patch(f"{urls['notify']}/admin/tenants/{tenant['id']}", headers=admin, json={
        "inbound_numbers": [NUMBER], "quiet_hours": None,
        "provider_credentials": {"twilio": {"account_sid": "ACtest",
                                            "auth_token": TWILIO_TOKEN, "from_number": NUMBER}}})
    assert r.status_code == 200, r.text

    def replicated():
        with platform.inbound.runtime.db.read() as session:
            row = session.get(Tenant, tenant["id"])
            return row is not None and NUMBER in row.config.get("inbound_numbers", [])
    eventually(replicated, message="tenant replicated to inbound")

    form = {"MessageSid": "SM" + "7" * 32, "From": CITIZEN, "To": NUMBER,
            "Body": "Oes modd cael bin ailgylchu newydd?"}
    url = settings.public_url("inbound") + "/webhooks/twilio/sms"
    r = requests.post(f"{urls['inbound']}/webhooks/twilio/sms", data=form, headers={
        "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, form)})
    assert r.status_code == 200

    simulator = platform.notify.simulator
    [answer] = eventually(lambda: simulator.messages_to(CITIZEN), timeout=90,
                          message="auto-reply sent through notify")
    reference = re.search(r"HYS-[A-Z2-9]{6}", answer.body).group(0)
    assert answer.body.startswith("Cyngor Sir Penfro: diolch am eich neges.")

    r = requests.patch(f"{urls['inbound']}/api/service-requests/{reference}",
                       headers=auth(tenant["api_key"]),
                       json={"status": "closed", "status_notes": "bin newydd ddydd Llun"})
    assert r.status_code == 200, r.text
    closed = eventually(lambda: [m for m in simulator.messages_to(CITIZEN) if "gau" in m.body],
                        timeout=90, message="closing text sent")
    # nothing is known of the citizen's language: both, Welsh first
    assert closed[0].body == (f"Cyngor Sir Penfro: mae eich adroddiad {reference} wedi'i gau: "
                              "bin newydd ddydd Llun\n\n"
                              f"Cyngor Sir Penfro: your report {reference} has been closed: "
                              "bin newydd ddydd Llun")
    with platform.inbound.runtime.db.read() as session:
        assert session.scalar(sa.text("select count(*) from service_requests")) == 1
