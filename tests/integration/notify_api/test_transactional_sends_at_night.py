"""At 21:30 (the service's injected clock) a v2 API send goes at once, as on GOV.UK
Notify, with a live key and with a test key; a tenant that turns quiet hours on for API
sends has its live-key sends held until 08:00, never its test key's.

Runs embedded (memory broker + SQLite) and on RabbitMQ + PostgreSQL, through the
official client.
"""
from __future__ import annotations

import datetime as dt

import requests
from notifications_python_client.authentication import create_jwt_token
from notifications_python_client.notifications import NotificationsAPIClient

from tests.conftest import eventually

HALF_NINE = dt.datetime(2026, 1, 14, 21, 30, tzinfo=dt.UTC)   # GMT: 21:30 in Wales
CODE = {"name": "Cod", "type": "sms",
        "body": {"cy": "Eich cod mewngofnodi yw ((code)).", "en": "Your sign-in code is ((code))."}}


def test_an_api_send_at_half_past_nine_goes_at_once_unless_the_tenant_asks_otherwise(platform):
    base = platform.urls()["notify"]
    admin = {"Authorization": f"Bearer {platform.settings.admin_token}"}
    tenant = requests.post(f"{base}/admin/tenants", headers=admin, timeout=5,
                           json={"name": "Cyngor Caerdydd", "slug": "caerdydd"}).json()
    jwt = create_jwt_token(tenant["api_key"][-36:], tenant["id"])
    tid = requests.post(f"{base}/api/templates", json=CODE, timeout=5,
                        headers={"Authorization": f"Bearer {jwt}"}).json()["id"]
    live = NotificationsAPIClient(tenant["api_key"], base_url=base)
    test = NotificationsAPIClient(tenant["test_api_key"], base_url=base)
    platform.notify.clock = lambda: HALF_NINE      # default quiet hours: 21:00-08:00

    for client in (live, test):
        sent = client.send_sms_notification("07700 900111", tid, {"code": "482913"})
        assert sent["status"] == "created"
        eventually(lambda c=client, s=sent: c.get_notification_by_id(s["id"])["status"]
                   == "delivered", message="sent at once, not held until 08:00")

    r = requests.patch(f"{base}/admin/tenants/{tenant['id']}", headers=admin, timeout=5,
                       json={"quiet_hours_for_api": True})
    assert r.status_code == 200 and r.json()["config"]["quiet_hours_for_api"] is True
    held = live.send_sms_notification("07700 900111", tid, {"code": "111111"})
    free = test.send_sms_notification("07700 900111", tid, {"code": "222222"})
    assert held["status"] == "deferred"
    assert live.get_notification_by_id(held["id"])["not_before"] == "2026-01-15T08:00:00.000000Z"
    assert free["status"] == "created", "a test key is never deferred"
