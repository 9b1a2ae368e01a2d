"""Fixtures for the scheduler's unit tests: a migrated service on SQLite, tenants
seeded the way production seeds them (a ``tenant.changed`` event through the
scheduler's own queue handler), and readers for what the ticker left in the outbox."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from notifications_python_client.authentication import create_jwt_token

from services.scheduler.wiring import SchedulerService, build
from shared import events
from shared.events import Event
from shared.outbox import OutboxRow


@dataclass
class SeededTenant:
    id: str
    slug: str
    secret: str

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {create_jwt_token(self.secret, self.id)}"}


@pytest.fixture
def scheduler(embedded_settings) -> SchedulerService:
    svc = build(embedded_settings)
    svc.runtime.migrate()
    yield svc
    svc.runtime.db.dispose()


@pytest.fixture
def client(scheduler):
    return scheduler.create_app().test_client()


@pytest.fixture
def deliver(scheduler):
    """Hand an event to the scheduler's queue handler, as the worker would (JSON and all)."""
    handle = scheduler.queue_handlers()["scheduler.events"]

    def _deliver(event: Event) -> Event:
        wire = Event.from_json(event.to_json())
        handle(wire)
        return wire
    return _deliver


@pytest.fixture
def new_tenant(scheduler, deliver):
    """A tenant and a live API key, replicated into the scheduler by ``tenant.changed``.

    Quiet hours are off unless a test sets them, so no test depends on the hour it runs.
    """
    def _new(slug: str, *, active: bool = True, config: dict | None = None,
             key_type: str = "live") -> SeededTenant:
        tenant_id, secret = str(uuid.uuid4()), str(uuid.uuid4())
        deliver(events.make(
            "tenant.changed", tenant_id, slug=slug, name=slug.title(), revision=1,
            default_language="cy", config={"quiet_hours": None, **(config or {})},
            active=active,
            api_keys=[{"id": str(uuid.uuid4()), "name": key_type, "key_type": key_type,
                       "secret_encrypted": scheduler.runtime.box.encrypt(secret),
                       "scopes": []}]))
        return SeededTenant(tenant_id, slug, secret)
    return _new


@pytest.fixture
def outbox_events(scheduler):
    """The outbox's events of one type, as their JSON bodies, oldest first."""
    def _read(event_type: str) -> list[dict]:
        with scheduler.runtime.db.read() as session:
            bodies = session.scalars(sa.select(OutboxRow.body).where(
                OutboxRow.event_type == event_type).order_by(OutboxRow.seq)).all()
        return [item for b in bodies for item in events.expand_body(json.loads(b))]
    return _read


@pytest.fixture
def error_messages():
    """A GOV.UK Notify error body's messages (and a check that its status code agrees)."""
    def _messages(resp) -> list[str]:
        body = resp.get_json()
        assert body["status_code"] == resp.status_code, body
        return [e["message"] for e in body["errors"]]
    return _messages
