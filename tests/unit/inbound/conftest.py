"""Fixtures: the inbound service on SQLite in a temporary folder, one tenant replicated in."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from inbound_support import (
    FakeScheduler,
    SeededTenant,
    make_settings,
    seed_tenant,
    start,
    twilio_signature,
)

from shared.config import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler()


@pytest.fixture
def inbound(settings, scheduler):
    service = start(settings, scheduler)
    yield service
    service.runtime.db.dispose()


@pytest.fixture
def tenant(inbound) -> SeededTenant:
    return seed_tenant(inbound)


@pytest.fixture
def client(inbound):
    return inbound.create_app().test_client()


@pytest.fixture
def post_twilio(inbound, client):
    """POST a form to the Twilio webhook, signed as Twilio signs it (unless told otherwise)."""
    def post(form: dict[str, str], *, signature: str | None = None, sign: bool = True,
             query: dict | None = None):
        path = "/webhooks/twilio/sms" + (f"?{urlencode(query)}" if query else "")
        headers = {}
        if sign:
            url = inbound.runtime.settings.public_url("inbound") + path
            headers["X-Twilio-Signature"] = signature or twilio_signature(url, form)
        return client.post(path, data=form, headers=headers)
    return post
