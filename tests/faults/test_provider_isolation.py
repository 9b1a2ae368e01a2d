"""One tenant's provider hangs: another tenant's text must not wait behind it.

Finding F1 (docs/reliability.md), fixed by a lane per remote provider: before, the
dispatcher handed chunks to providers one after another in one thread, so a provider
that answered slowly or not at all held every tenant's sends for as long as each call
took (up to the client timeout, five times over before the circuit opened).  The fault run
``test_a_slow_then_failing_then_hanging_provider_is_retried_and_failed_over_exactly_once``
measures the same on the real stack.
"""
from __future__ import annotations

import threading
import uuid

import pytest
import requests
from notifications_python_client.authentication import create_jwt_token

from services.embedded import Platform
from services.notify.providers.base import OutgoingMessage, SendResult
from tests.conftest import _base_settings, eventually


class HangingProvider:
    """A remote SMS provider that holds every call until released (at most 20 s)."""

    name = "twilio"
    channels = ("sms",)
    remote = True
    sender = "+447700900400"

    def __init__(self):
        self.called = threading.Event()
        self.release = threading.Event()

    def send(self, message: OutgoingMessage) -> SendResult:
        self.called.set()
        self.release.wait(20)
        return SendResult("sent", "SM" + uuid.uuid4().hex)


def _auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


@pytest.fixture
def hanging():
    return HangingProvider()


@pytest.fixture
def running(tmp_path, hanging):
    settings = _base_settings(tmp_path, allowed_providers=("simulator", "twilio"))
    platform = Platform(settings, providers={"twilio": hanging})
    platform.migrate()
    platform.start()
    yield platform
    hanging.release.set()
    platform.stop()


def _tenant(url: str, slug: str, providers: list[str]) -> tuple[dict, str]:
    admin = {"Authorization": "Bearer test-admin-token"}
    tenant = requests.post(url + "/admin/tenants", json={"name": slug, "slug": slug}, headers=admin,
                           timeout=10).json()
    requests.patch(f"{url}/admin/tenants/{tenant['id']}", headers=admin, timeout=10,
                   json={"providers": providers, "quiet_hours": None}).raise_for_status()
    template = requests.post(url + "/api/templates", headers=_auth(tenant["api_key"]), timeout=10,
                             json={"name": "t", "type": "sms", "body": {"en": "Hi", "cy": "Helo"}})
    return tenant, template.json()["id"]


def _send(url: str, tenant: dict, template_id: str, number: str) -> str:
    r = requests.post(url + "/v2/notifications/sms", headers=_auth(tenant["api_key"]), timeout=10,
                      json={"phone_number": number, "template_id": template_id})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_hanging_provider_does_not_hold_up_another_tenants_text(running, hanging):
    url = running.urls()["notify"]
    stuck, stuck_template = _tenant(url, "stuck", ["twilio"])
    other, other_template = _tenant(url, "other", ["simulator"])

    _send(url, stuck, stuck_template, "07700900000")
    assert hanging.called.wait(10), "the hanging provider was never called"
    waiting = _send(url, other, other_template, "07700900111")

    def delivered() -> bool:
        r = requests.get(f"{url}/v2/notifications/{waiting}", headers=_auth(other["api_key"]),
                         timeout=10)
        return r.json().get("status") == "delivered"
    eventually(delivered, timeout=8, message="the other tenant's text delivered while the "
                                             "first tenant's provider hangs")
