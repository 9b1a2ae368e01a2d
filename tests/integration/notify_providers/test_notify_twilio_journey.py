"""End to end through the platform: a council configured with Twilio credentials sends
with the official GOV.UK Notify client, the platform's Twilio adapter reaches a fake
Twilio, a forged status callback changes nothing, and Twilio's signed one makes the
notification ``delivered``.

Runs embedded (memory broker + SQLite) and on RabbitMQ + PostgreSQL.
"""
from __future__ import annotations

import pytest
import requests
from notifications_python_client.authentication import create_jwt_token
from notifications_python_client.notifications import NotificationsAPIClient

from services.embedded import Platform
from services.notify.providers.twilio import TwilioFactory
from tests.conftest import eventually
from tests.fakes.twilio_server import FakeTwilio

TEMPLATE = {"name": "Bin day", "type": "sms",
            "body": {"cy": "Helo ((name)), rhowch y biniau allan heno.",
                     "en": "Hello ((name)), put the bins out tonight."}}


@pytest.fixture
def fake_twilio():
    with FakeTwilio("AC" + "6" * 32, "penfro-twilio-auth-token", from_number="+447700900400") as fake:
        yield fake


@pytest.fixture
def twilio_platform(stack_settings, fake_twilio):
    settings = stack_settings.with_(allowed_providers=("simulator", "twilio"))
    fake_twilio.status_callback = settings.public_url("notify") + "/callbacks/twilio/status"
    platform = Platform(settings, providers={"twilio": TwilioFactory(base_url=fake_twilio.url, timeout=5)})
    platform.migrate()
    platform.start()
    yield platform
    platform.stop()


def onboard(platform: Platform, fake: FakeTwilio) -> dict:
    base, settings = platform.urls()["notify"], platform.settings
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    created = requests.post(f"{base}/admin/tenants", json={"name": "Cyngor Sir Penfro", "slug": "penfro"},
                            headers=admin, timeout=5).json()
    patched = requests.patch(f"{base}/admin/tenants/{created['id']}", headers=admin, timeout=5, json={
        "providers": ["twilio"], "provider_credentials": {"twilio": fake.credentials()},
        "quiet_hours": None})   # the test may run at night: no deferral
    assert patched.status_code == 200
    assert patched.json()["providers_configured"] == ["twilio"]
    assert fake.auth_token not in patched.text, "credentials are never returned"
    return created


def test_a_twilio_tenant_sends_with_the_official_client_and_only_a_signed_receipt_delivers_it(
        twilio_platform, fake_twilio):
    tenant = onboard(twilio_platform, fake_twilio)
    base = twilio_platform.urls()["notify"]
    jwt = create_jwt_token(tenant["api_key"][-36:], tenant["id"])
    template = requests.post(f"{base}/api/templates", json=TEMPLATE, timeout=5,
                             headers={"Authorization": f"Bearer {jwt}"}).json()
    client = NotificationsAPIClient(tenant["api_key"], base_url=base)

    sent = client.send_sms_notification("07700 900123", template["id"], personalisation={"name": "Ceri"})
    [message] = eventually(lambda: list(fake_twilio.messages), message="Twilio received the text")
    eventually(lambda: client.get_notification_by_id(sent["id"])["status"] == "sent",
               message="the hand-off is recorded")
    forged = fake_twilio.send_status_callback(message, "undelivered", 30005, auth_token="forged")
    assert forged.status_code == 403
    assert client.get_notification_by_id(sent["id"])["status"] == "sent", "a forged receipt changes nothing"

    receipt = fake_twilio.send_status_callback(message, "delivered")

    assert receipt.status_code == 204
    assert fake_twilio.problems == [], "auth, To, From, Body and StatusCallback were all right"
    assert (message.to, message.from_) == ("+447700900123", "+447700900400")
    assert "Ceri" in message.body and "biniau" in message.body
    assert client.get_notification_by_id(sent["id"])["status"] == "delivered"

