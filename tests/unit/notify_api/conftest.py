"""The notify service on SQLite in a temporary folder, driven through Flask's test client."""
from __future__ import annotations

import pytest
from notify_api_support import SMS_TEMPLATE, new_tenant

from services.notify.wiring import build


@pytest.fixture
def notify(embedded_settings):
    svc = build(embedded_settings)
    svc.runtime.migrate()
    yield svc
    svc.runtime.db.dispose()


@pytest.fixture
def client(notify):
    return notify.create_app().test_client()


@pytest.fixture
def tenant(notify):
    return new_tenant(notify)


@pytest.fixture
def sms_template(client, tenant) -> dict:
    r = client.post("/api/templates", json=SMS_TEMPLATE, headers=tenant.live)
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()
