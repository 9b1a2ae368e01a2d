"""One reminder's journey through all three services, embedded and on RabbitMQ + PostgreSQL.

tenant created (CLI and admin API) → bilingual template → the official GOV.UK
Notify client sends and sees ``delivered`` → a scheduled broadcast reaches three
subscribers, each in their own language → a signed STOP from Twilio opts one out
→ the next send to that number ends ``suppressed`` with no provider call.
"""
from __future__ import annotations

import datetime as dt
import io
import json
from contextlib import redirect_stdout

import pytest
import requests
from notifications_python_client.authentication import create_jwt_token
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient
from twilio.request_validator import RequestValidator

from services import cli
from services.notify.sending import find_suppression
from tests.conftest import eventually

TWILIO_TOKEN = "twilio-auth-token-for-tests"
INBOUND_NUMBER = "+447700900999"
TEMPLATE = {"name": "Bin day", "type": "sms",
            "body": {"cy": "Helo ((name)), rhowch y biniau allan heno.",
                     "en": "Hello ((name)), put the bins out tonight."}}


def auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


def cli_env(monkeypatch, settings) -> None:
    monkeypatch.setenv("HYSBYS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HYSBYS_BROKER_URL", settings.broker_url)
    monkeypatch.setenv("HYSBYS_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("HYSBYS_ADMIN_TOKEN", settings.admin_token)
    monkeypatch.setenv("HYSBYS_VAR_DIR", str(settings.var_dir))


def create_tenant_with_cli(monkeypatch, settings, slug: str) -> dict:
    cli_env(monkeypatch, settings)
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["tenants", "create", "--name", "Cyngor Sir Penfro", "--slug", slug,
                         "--json"]) == 0
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, "--json prints one JSON object on one line"
    created = json.loads(lines[0])
    assert set(created) == {"id", "slug", "api_key", "test_api_key"}
    return created


def opted_out_in_notify(platform, tenant_id: str, number: str) -> bool:

    with platform.notify.runtime.db.read() as session:
        return find_suppression(session, tenant_id, "sms", number) is not None


def scheduler_revision(platform, tenant_id: str) -> int:
    from shared.tenancy import Tenant

    with platform.scheduler.runtime.db.read() as session:
        replica = session.get(Tenant, tenant_id)
        return replica.revision if replica else 0


def sign(settings, params: dict) -> dict:
    url = settings.public_url("inbound") + "/webhooks/twilio/sms"
    return {"X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, params)}


def test_a_reminder_travels_from_template_to_reply_and_opt_out(platform, monkeypatch):
    settings = platform.settings
    urls = platform.urls()
    simulator = platform.notify.simulator
    admin = {"Authorization": f"Bearer {settings.admin_token}"}

    # 1. onboarding: the CLI and the admin API answer the same shape
    tenant = create_tenant_with_cli(monkeypatch, settings, "pembrokeshire")
    r = requests.post(f"{urls['notify']}/admin/tenants", headers=admin,
                      json={"name": "Bwrdd Iechyd Bae Abertawe", "slug": "swansea-bay"})
    assert r.status_code == 201
    assert set(r.json()) == {"id", "slug", "api_key", "test_api_key"}
    other_tenant = r.json()
    r = requests.patch(f"{urls['notify']}/admin/tenants/{tenant['id']}", headers=admin, json={
        "inbound_numbers": ["07700 900999"], "quiet_hours": None,
        "provider_credentials": {"twilio": {"account_sid": "ACtest", "auth_token": TWILIO_TOKEN,
                                            "from_number": INBOUND_NUMBER}}})
    assert r.status_code == 200, r.text
    assert "auth_token" not in r.text, "credentials are never returned"
    # the scheduler plans with the tenant's quiet hours: wait until it has this revision
    # (else, run after 21:00, the broadcast would wait for 08:00)
    eventually(lambda: scheduler_revision(platform, tenant["id"]) >= r.json()["revision"],
               message="tenant revision replicated to the scheduler")

    # 2. a bilingual template
    r = requests.post(f"{urls['notify']}/api/templates", json=TEMPLATE,
                      headers=auth(tenant["api_key"]))
    assert r.status_code == 201, r.text
    template_id = r.json()["id"]

    # 3. the official client, unchanged but for its base URL
    client = NotificationsAPIClient(tenant["api_key"], base_url=urls["notify"])
    sent = client.send_sms_notification("07700 900111", template_id,
                                         personalisation={"name": "Dai"}, reference="journey-1")
    assert set(sent) >= {"id", "reference", "content", "uri", "template", "scheduled_for"}
    assert sent["scheduled_for"] is None and sent["reference"] == "journey-1"
    eventually(lambda: client.get_notification_by_id(sent["id"])["status"] == "delivered",
               message="API send delivered")

    # 4. a broadcast from the scheduler, each subscriber in their own language
    eventually(lambda: requests.get(f"{urls['scheduler']}/api/campaigns",
                                    headers=auth(tenant["api_key"])).status_code == 200,
               message="tenant replicated to the scheduler")
    subscribers = [{"phone": "07700 900000", "language": "cy", "attributes": {"name": "Siân"}},
                   {"phone": "07700 900222", "language": "en", "attributes": {"name": "Dave"}},
                   {"phone": "07700 900123", "attributes": {"name": "Eleri"}}]
    r = requests.post(f"{urls['scheduler']}/api/subscribers", json=subscribers,
                      headers=auth(tenant["api_key"]))
    assert r.status_code == 201, r.text
    send_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    r = requests.post(f"{urls['scheduler']}/api/campaigns", headers=auth(tenant["api_key"]),
                      json={"name": "Bins", "kind": "broadcast", "template_id": template_id,
                            "channel": "sms", "send_at": send_at.isoformat(), "audience": {}})
    assert r.status_code == 201, r.text

    def broadcast_delivered():
        ns = [n for n in client.get_all_notifications()["notifications"]
              if n["reference"] and n["reference"].startswith(r.json()["id"])]
        return ns if len(ns) == 3 and all(n["status"] == "delivered" for n in ns) else None
    delivered = {n["phone_number"]: n["body"] for n in eventually(
        broadcast_delivered, timeout=30, message="broadcast delivered")}
    assert delivered["+447700900000"] == "Helo Siân, rhowch y biniau allan heno."
    assert delivered["+447700900222"] == "Hello Dave, put the bins out tonight."
    assert delivered["+447700900123"] == ("Helo Eleri, rhowch y biniau allan heno.\n\n"
                                          "Hello Eleri, put the bins out tonight."), \
        "language unknown: bilingual, Welsh first"

    # 5. a forged STOP changes nothing; a signed one opts the citizen out
    stop = {"MessageSid": "SM" + "1" * 32, "AccountSid": "ACtest", "From": "+447700900222",
            "To": INBOUND_NUMBER, "Body": "STOP", "NumMedia": "0"}
    forged = requests.post(f"{urls['inbound']}/webhooks/twilio/sms", data=stop,
                           headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert forged.status_code == 403
    still_sends = client.send_sms_notification("07700 900222", template_id,
                                               personalisation={"name": "Dave"})
    eventually(lambda: client.get_notification_by_id(still_sends["id"])["status"] == "delivered",
               message="forged STOP did not opt out")
    r = requests.post(f"{urls['inbound']}/webhooks/twilio/sms", data=stop, headers=sign(settings, stop))
    assert r.status_code == 200 and r.text.startswith("<?xml")

    eventually(lambda: opted_out_in_notify(platform, tenant["id"], "+447700900222"),
               message="the opt-out reached notify's suppression list")
    calls_before = len(simulator.messages_to("+447700900222"))
    after = client.send_sms_notification("07700 900222", template_id,
                                         personalisation={"name": "Dave"})
    eventually(lambda: client.get_notification_by_id(after["id"])["status"] == "suppressed",
               message="a send after STOP ends suppressed")
    assert len(simulator.messages_to("+447700900222")) == calls_before, \
        "the provider is not called for an opted-out number"

    # the other tenant never sees this tenant's notification
    other = NotificationsAPIClient(other_tenant["api_key"], base_url=urls["notify"])
    with pytest.raises(HTTPError) as err:
        other.get_notification_by_id(sent["id"])
    assert err.value.status_code == 404
