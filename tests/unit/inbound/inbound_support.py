"""Helpers for the inbound service's unit tests (imported by the tests and conftest.py).

The service runs on SQLite in a temporary folder; a tenant arrives the way it
does in production, as a ``tenant.changed`` event handed to the service's own
queue handler.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.fernet import Fernet
from twilio.request_validator import RequestValidator

from services.inbound.wiring import InboundService, build
from shared import events
from shared.config import Settings
from shared.crypto import SecretBox
from shared.outbox import OutboxRow

INBOUND_NUMBER = "+447700900500"
CITIZEN = "+447700900123"
AUTH_TOKEN = "twilio-auth-token-for-tests"
NOTIFY_TOKEN = "notify-inbound-token-for-tests"


@dataclass
class SeededTenant:
    id: str
    slug: str
    name: str
    number: str


def make_settings(tmp_path, **overrides) -> Settings:
    values = {"database_url": f"sqlite:///{tmp_path}/hysbys.db",
              # memory:// with a name nobody else uses: nothing here reaches a broker
              "broker_url": "memory://inbound-unit-tests",
              "secret_key": Fernet.generate_key().decode(), "admin_token": "test-admin",
              "var_dir": tmp_path}
    return Settings(**{**values, **overrides})


def start(settings: Settings) -> InboundService:
    service = build(settings)
    service.runtime.migrate()
    return service


def apply(service: InboundService, event: events.Event) -> None:
    """Hand ``event`` to the service's queue handler as the worker would, off the wire."""
    service.queue_handlers()["inbound.events"](events.Event.from_json(event.to_json()))


def seed_tenant(service: InboundService, *, slug: str = "penfro", number: str = INBOUND_NUMBER,
                default_language: str = "cy", secrets: dict | None = None) -> SeededTenant:
    box = SecretBox(service.runtime.settings.secret_key)
    if secrets is None:
        secrets = {"providers": {
            "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": AUTH_TOKEN,
                       "from_number": number},
            "notify": {"inbound_token": NOTIFY_TOKEN}},
            "webhook_secret": "tenant-webhook-secret"}
    tenant_id = str(uuid.uuid4())
    name = f"Cyngor {slug.title()}"
    apply(service, events.make(
        "tenant.changed", tenant_id, slug=slug, name=name, revision=1,
        default_language=default_language, config={"inbound_numbers": [number]},
        config_encrypted=box.encrypt_json(secrets), api_keys=[]))
    return SeededTenant(tenant_id, slug, name, number)


def outbox_events(service: InboundService) -> list[events.Event]:
    with service.runtime.db.read() as session:
        rows = session.scalars(sa.select(OutboxRow).order_by(OutboxRow.seq)).all()
    return [events.Event.from_json(r.body) for r in rows]


def twilio_form(body: str = "STOP", *, sid: str | None = None, to: str = INBOUND_NUMBER,
                from_: str = CITIZEN, **extra: str) -> dict[str, str]:
    """The fields Twilio posts for an incoming text (with some it adds that we ignore)."""
    return {"MessageSid": sid or "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32,
            "MessagingServiceSid": "MG" + "1" * 32, "From": from_, "To": to, "Body": body,
            "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01",
            "FromCountry": "GB", "ToCountry": "GB", **extra}


def twilio_signature(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)
