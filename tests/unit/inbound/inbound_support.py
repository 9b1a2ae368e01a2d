"""Helpers for the inbound service's unit tests (imported by the tests and conftest.py).

The service runs on SQLite in a temporary folder; a tenant arrives the way it
does in production, as a ``tenant.changed`` event handed to the service's own
queue handler.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from cryptography.fernet import Fernet
from twilio.request_validator import RequestValidator

from services.inbound.scheduler_client import FOUND, UNAVAILABLE, UNKNOWN, Lookup
from services.inbound.wiring import InboundService, build
from shared import events
from shared.config import Settings
from shared.crypto import SecretBox
from shared.outbox import OutboxRow

INBOUND_NUMBER = "+447700900500"
CITIZEN = "+447700900123"
AUTH_TOKEN = "twilio-auth-token-for-tests"
NOTIFY_TOKEN = "notify-inbound-token-for-tests"
REPLY_TEMPLATE = "6f1c2a9e-0d4b-4c8e-9a51-3b7d2e8f4c10"
WEBHOOK_SECRET = "tenant-webhook-secret"


@dataclass
class FakeScheduler:
    """The scheduler's internal API as inbound sees it: answers set per phone, calls kept.

    ``down`` makes every call ``unavailable``, as a scheduler that is down or slow would.
    """

    collections: dict[str, dict | None] = field(default_factory=dict)
    subscribers: dict[str, dict] = field(default_factory=dict)
    # the language the scheduler has recorded per phone, and each phone's live appointments
    languages: dict[str, str] = field(default_factory=dict)
    appointments: dict[str, list[dict]] = field(default_factory=dict)
    down: bool = False
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def next_collection(self, tenant_id: str, phone: str) -> Lookup:
        self.calls.append(("next_collection", tenant_id, phone))
        if self.down:
            return Lookup(UNAVAILABLE)
        if phone not in self.collections:
            return Lookup(UNKNOWN)
        return Lookup(FOUND, {"phone": phone, "next_collection": self.collections[phone]})

    def subscriber(self, tenant_id: str, phone: str) -> Lookup:
        self.calls.append(("subscriber", tenant_id, phone))
        if self.down:
            return Lookup(UNAVAILABLE)
        if phone not in self.subscribers:
            return Lookup(UNKNOWN)
        return Lookup(FOUND, {"phone": phone, "attributes": self.subscribers[phone]})

    def citizen(self, tenant_id: str, phone: str) -> Lookup:
        self.calls.append(("citizen", tenant_id, phone))
        if self.down:
            return Lookup(UNAVAILABLE)
        return Lookup(FOUND, {"phone": phone, "language": self.languages.get(phone),
                              "appointments": self.appointments.get(phone, [])})

    def book(self, phone: str, reference: str, reply_code: str, *,
             starts_at: dt.datetime | None = None, language: str | None = None) -> str:
        """A live appointment of ``phone``'s, as the scheduler would answer it; its id."""
        appointment_id = str(uuid.uuid4())
        self.appointments.setdefault(phone, []).append({
            "id": appointment_id, "external_reference": reference, "reply_code": reply_code,
            "status": "booked", "language": language,
            "starts_at": starts_at or dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC)})
        return appointment_id


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


def start(settings: Settings, scheduler: FakeScheduler | None = None) -> InboundService:
    service = build(settings, lookups=scheduler or FakeScheduler())
    service.runtime.migrate()
    return service


def apply(service: InboundService, event: events.Event) -> None:
    """Hand ``event`` to the service's queue handler as the worker would, off the wire."""
    service.queue_handlers()["inbound.events"](events.Event.from_json(event.to_json()))


def seed_tenant(service: InboundService, *, slug: str = "penfro", number: str = INBOUND_NUMBER,
                default_language: str = "cy", secrets: dict | None = None,
                config: dict | None = None, api_keys: list | None = None) -> SeededTenant:
    box = SecretBox(service.runtime.settings.secret_key)
    if secrets is None:
        secrets = {"providers": {
            "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": AUTH_TOKEN,
                       "from_number": number},
            "notify": {"inbound_token": NOTIFY_TOKEN}},
            "webhook_secret": WEBHOOK_SECRET}
    tenant_id = str(uuid.uuid4())
    name = f"Cyngor {slug.title()}"
    apply(service, events.make(
        "tenant.changed", tenant_id, slug=slug, name=name, revision=1,
        default_language=default_language,
        config={"inbound_numbers": [number], "reply_template_id": REPLY_TEMPLATE, **(config or {})},
        config_encrypted=box.encrypt_json(secrets), api_keys=api_keys or []))
    return SeededTenant(tenant_id, slug, name, number)


def outbox_events(service: InboundService) -> list[events.Event]:
    with service.runtime.db.read() as session:
        rows = session.scalars(sa.select(OutboxRow).order_by(OutboxRow.seq)).all()
    return [item for r in rows for item in events.Event.from_json(r.body).expand()]


def twilio_form(body: str = "STOP", *, sid: str | None = None, to: str = INBOUND_NUMBER,
                from_: str = CITIZEN, **extra: str) -> dict[str, str]:
    """The fields Twilio posts for an incoming text (with some it adds that we ignore)."""
    return {"MessageSid": sid or "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32,
            "MessagingServiceSid": "MG" + "1" * 32, "From": from_, "To": to, "Body": body,
            "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01",
            "FromCountry": "GB", "ToCountry": "GB", **extra}


def twilio_signature(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


def events_of(service: InboundService, type_: str) -> list[events.Event]:
    return [e for e in outbox_events(service) if e.type == type_]


def auto_reply(service: InboundService) -> events.Event:
    """The one auto-reply asked of notify (fails if there is not exactly one)."""
    [reply] = events_of(service, "notification.requested")
    return reply


def key_record(service: InboundService, secret: str, *, name: str = "penfro live",
               scopes: list | None = None, revoked: bool = False) -> dict:
    """An API key as the tenant.changed snapshot carries it (secret encrypted)."""
    import datetime as dt

    box = SecretBox(service.runtime.settings.secret_key)
    return {"id": str(uuid.uuid4()), "name": name, "key_type": "live",
            "secret_encrypted": box.encrypt(secret), "scopes": scopes or [],
            "revoked_at": dt.datetime.now(dt.UTC) if revoked else None}


def tenant_with_key(service: InboundService, **kwargs) -> tuple[SeededTenant, str]:
    """A tenant with one live key; answers the key string a council is handed."""
    secret = str(uuid.uuid4())
    record = key_record(service, secret, scopes=kwargs.pop("scopes", None))
    tenant = seed_tenant(service, api_keys=[record], **kwargs)
    return tenant, f"penfro_live-{tenant.id}-{secret}"


def bearer(api_key: str) -> dict:
    """The Authorization header notifications-python-client sends for ``api_key``."""
    from notifications_python_client.authentication import create_jwt_token

    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}
