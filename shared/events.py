"""Events: the envelope and one versioned marshmallow schema per event type.

Every event crosses the broker as JSON in this envelope::

    {"id", "type", "version", "tenant_id", "occurred_at", "correlation_id", "data"}

and is checked against its schema when it is published and again when it is
consumed.  Events are named in the past tense and carry ids plus the facts a
consumer needs; the database row of the owning service stays the truth.

Batches (DESIGN.md, "Events"): the notification types (:data:`BATCHED`) carry up to
:data:`MAX_ITEMS` items of one type for one tenant, as ``data = {"items": [...]}``,
each item what a single event's data was (plus its own ``correlation_id``).  The
ticker writes one ``notification.requested`` per batch of recipients, and every
transaction that changes notifications' statuses writes one outcome event per type
(:func:`shared.outbox.collect`).  A consumer's inbox claims the batch's id, and
:meth:`Event.expand` hands the handlers one item-event each, so a handler's code is
the same for a batch of 1,000 as for one.  An event of a batched type without
``items`` (published before 2026-12, or replayed from a dead-letter queue) is read as
a batch of one.  Single things stay single: a reply, an opt-out, a tenant change.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate

SCHEMA_VERSION = 1

LANGUAGES = ("cy", "en")
CHANNELS = ("sms", "email")
TERMINAL_STATUSES = ("delivered", "permanent-failure", "temporary-failure",
                     "technical-failure", "suppressed")


class _Data(Schema):
    class Meta:
        # Consumers accept fields added by a newer minor version of the producer.
        unknown = INCLUDE


class NotificationRequested(_Data):
    notification_id = fields.UUID(required=True)
    template_id = fields.UUID(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    recipient = fields.String(required=True, validate=validate.Length(min=3, max=320))
    language = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(LANGUAGES))
    personalisation = fields.Dict(keys=fields.String(), load_default=dict)
    reference = fields.String(load_default=None, allow_none=True)
    urgent = fields.Boolean(load_default=False)
    campaign_id = fields.UUID(load_default=None, allow_none=True)
    occurrence_key = fields.String(load_default=None, allow_none=True)
    appointment_id = fields.UUID(load_default=None, allow_none=True)
    # the board's reference and the reply code of the appointment reminded ("CANSLO 4821"):
    # notify keeps them on the notification and puts them on its status events
    appointment_reference = fields.String(load_default=None, allow_none=True,
                                          validate=validate.Length(max=100))
    reply_code = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(max=16))
    not_before = fields.AwareDateTime(load_default=None, allow_none=True)
    # a two-way campaign sends from a number (alphanumeric IDs cannot take replies)
    sender = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    # in a batch, each item keeps the correlation id of the request or run it came from
    correlation_id = fields.String(load_default=None, allow_none=True,
                                   validate=validate.Length(max=64))


class NotificationStatusChanged(_Data):
    notification_id = fields.UUID(required=True)
    status = fields.String(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    provider = fields.String(load_default=None, allow_none=True)
    reason = fields.String(load_default=None, allow_none=True)
    campaign_id = fields.UUID(load_default=None, allow_none=True)
    occurrence_key = fields.String(load_default=None, allow_none=True)
    # The recipient travels so that inbound can find "the last message sent to
    # this citizen" (the conversation context for a reply).
    recipient = fields.String(load_default=None, allow_none=True)
    appointment_id = fields.UUID(load_default=None, allow_none=True)
    appointment_reference = fields.String(load_default=None, allow_none=True)
    reply_code = fields.String(load_default=None, allow_none=True)
    # the language the message went in: "cy", "en" or "cy+en" (bilingual); a reply to it
    # is answered in that language when the citizen has none recorded
    language = fields.String(load_default=None, allow_none=True)
    correlation_id = fields.String(load_default=None, allow_none=True,
                                   validate=validate.Length(max=64))


class InboundMessageReceived(_Data):
    message_id = fields.UUID(required=True)
    provider_reference = fields.String(required=True)
    from_number = fields.String(required=True)
    to_number = fields.String(required=True)
    body = fields.String(required=True)
    received_at = fields.AwareDateTime(required=True)
    keyword = fields.String(load_default=None, allow_none=True)
    # the campaign of the last text sent to this citizen (the reply's context), if any
    campaign_id = fields.UUID(load_default=None, allow_none=True)


class SubscriberOptChanged(_Data):
    recipient = fields.String(required=True)
    channel = fields.String(load_default="sms", validate=validate.OneOf(CHANNELS))
    source = fields.String(load_default="reply")


class SubscriberLanguageChanged(_Data):
    """A citizen replied CYMRAEG / ENGLISH (or a team set it): texts in that language."""

    recipient = fields.String(required=True)
    channel = fields.String(load_default="sms", validate=validate.OneOf(CHANNELS))
    language = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    source = fields.String(load_default="reply")


class ServiceRequestChanged(_Data):
    request_id = fields.UUID(required=True)
    reference = fields.String(required=True)
    service_code = fields.String(required=True)
    status = fields.String(required=True)


class AppointmentChanged(_Data):
    appointment_id = fields.UUID(required=True)
    external_reference = fields.String(load_default=None, allow_none=True)
    recipient = fields.String(load_default=None, allow_none=True)
    source = fields.String(load_default="reply")
    reply_code = fields.String(load_default=None, allow_none=True)
    # the reply that asked for it (inbound's message id and HYS- reference)
    message_id = fields.UUID(load_default=None, allow_none=True)
    reference = fields.String(load_default=None, allow_none=True)


class CampaignOccurrenceCompleted(_Data):
    campaign_id = fields.UUID(required=True)
    occurrence_key = fields.String(required=True)
    requested = fields.Integer(required=True)
    skipped = fields.Integer(load_default=0)


class ApiKeyRecord(Schema):
    class Meta:
        unknown = INCLUDE

    id = fields.UUID(required=True)
    name = fields.String(required=True)
    key_type = fields.String(required=True, validate=validate.OneOf(("live", "team", "test")))
    secret_encrypted = fields.String(required=True)
    scopes = fields.List(fields.String(), load_default=list)
    revoked_at = fields.AwareDateTime(load_default=None, allow_none=True)


class TenantChanged(_Data):
    """A full snapshot of a tenant: every service keeps a replica of this."""

    slug = fields.String(required=True)
    name = fields.String(required=True)
    revision = fields.Integer(required=True)
    default_language = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    config = fields.Dict(required=True)
    config_encrypted = fields.String(load_default=None, allow_none=True)
    api_keys = fields.List(fields.Nested(ApiKeyRecord), load_default=list)
    active = fields.Boolean(load_default=True)


class ApiKeyRevoked(_Data):
    key_id = fields.UUID(required=True)
    revoked_at = fields.AwareDateTime(required=True)


class AuditRecorded(_Data):
    """A change another service made, for notify's audit log (shared/audit.py)."""

    service = fields.String(required=True, validate=validate.Length(max=16))
    via = fields.String(load_default="api", validate=validate.Length(max=16))
    action = fields.String(required=True, validate=validate.Length(max=64))
    actor = fields.Dict(required=True)
    target = fields.Dict(load_default=dict)
    before = fields.Dict(load_default=None, allow_none=True)
    after = fields.Dict(load_default=None, allow_none=True)


EVENT_SCHEMAS: dict[str, type[Schema]] = {
    "notification.requested": NotificationRequested,
    "notification.sent": NotificationStatusChanged,
    "notification.delivered": NotificationStatusChanged,
    "notification.failed": NotificationStatusChanged,
    "notification.suppressed": NotificationStatusChanged,
    "notification.deferred": NotificationStatusChanged,
    "inbound.message.received": InboundMessageReceived,
    "subscriber.opted_out": SubscriberOptChanged,
    "subscriber.opted_in": SubscriberOptChanged,
    "subscriber.language_changed": SubscriberLanguageChanged,
    "service_request.created": ServiceRequestChanged,
    "service_request.updated": ServiceRequestChanged,
    "appointment.confirmed": AppointmentChanged,
    "appointment.cancelled": AppointmentChanged,
    "appointment.rearrange_requested": AppointmentChanged,
    "campaign.occurrence.completed": CampaignOccurrenceCompleted,
    "tenant.changed": TenantChanged,
    "api_key.revoked": ApiKeyRevoked,
    "audit.recorded": AuditRecorded,
}


# The types whose events carry batches of items (one type, one tenant, at most MAX_ITEMS).
BATCHED = frozenset({"notification.requested", "notification.sent", "notification.delivered",
                     "notification.failed", "notification.suppressed",
                     "notification.deferred"})
MAX_ITEMS = 1000


def _batch_schema(item: type[Schema]) -> type[Schema]:
    class Batch(Schema):
        class Meta:
            unknown = INCLUDE

        items = fields.List(fields.Nested(item), required=True,
                            validate=validate.Length(min=1, max=MAX_ITEMS))

    Batch.__name__ = item.__name__ + "Batch"
    return Batch


class Envelope(Schema):
    class Meta:
        unknown = RAISE

    id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.OneOf(sorted(EVENT_SCHEMAS)))
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    tenant_id = fields.UUID(required=True, allow_none=True)
    occurred_at = fields.AwareDateTime(required=True)
    correlation_id = fields.String(load_default=None, allow_none=True)
    data = fields.Dict(required=True)


class EventError(ValueError):
    """A message that is not a valid event (undecodable, or failing its schema)."""


# One instance of each schema, made once: building a marshmallow Schema deep-copies its
# declared fields, which cost more than the load or dump itself (a bin night checks
# hundreds of thousands of events).  Instances hold no per-call state, so they are shared.
_DATA_SCHEMAS: dict[str, Schema] = {name: schema() for name, schema in EVENT_SCHEMAS.items()}
_BATCH_SCHEMAS: dict[str, Schema] = {name: _batch_schema(EVENT_SCHEMAS[name])()
                                     for name in BATCHED}
_ENVELOPE = Envelope()


def _schema_for(type_: str, data: Any) -> Schema | None:
    """The batch schema for a batched type's ``{"items": [...]}``, else the type's own."""
    if type_ in _BATCH_SCHEMAS and isinstance(data, dict) and "items" in data:
        return _BATCH_SCHEMAS[type_]
    return _DATA_SCHEMAS.get(type_)


@dataclass(frozen=True)
class Event:
    type: str
    tenant_id: uuid.UUID | None
    data: dict[str, Any]
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    correlation_id: str | None = None
    version: int = SCHEMA_VERSION
    # the W3C traceparent the message arrived with (its ``traceparent`` header): where the
    # consumer's span joins the producer's trace.  Not part of the envelope, never serialised.
    traceparent: str | None = field(default=None, compare=False, repr=False)

    @property
    def batched(self) -> bool:
        """Does this event carry ``items`` (a batch), rather than one thing's data?"""
        return self.type in BATCHED and "items" in self.data

    @property
    def items(self) -> list[dict[str, Any]]:
        """The items a batch carries; a single event's data as a batch of one."""
        return self.data["items"] if self.batched else [self.data]

    def expand(self) -> list[Event]:
        """One event per item, for handlers: each keeps the batch's type, tenant, time and
        trace, has its item's correlation id (else the batch's), and an id derived from the
        batch's id and its place in it (the same on every redelivery)."""
        if not self.batched:
            return [self]
        return [Event(type=self.type, tenant_id=self.tenant_id, data=item,
                      id=uuid.uuid5(self.id, str(index)), occurred_at=self.occurred_at,
                      correlation_id=item.get("correlation_id") or self.correlation_id,
                      version=self.version, traceparent=self.traceparent)
                for index, item in enumerate(self.items)]

    def to_json(self) -> str:
        schema = _schema_for(self.type, self.data)
        if schema is None:
            raise EventError(f"unknown event type {self.type!r}")
        # validated once, where it is made: the dump is loaded back by the schema that
        # the consumer will use (one pass each, however many items the batch holds)
        data = schema.dump(self.data)
        errors = schema.validate(data)
        if errors:
            raise EventError(f"{self.type} data invalid: {errors}")
        body = {
            "id": str(self.id),
            "type": self.type,
            "version": self.version,
            "tenant_id": str(self.tenant_id) if self.tenant_id else None,
            "occurred_at": self.occurred_at.isoformat(),
            "correlation_id": self.correlation_id,
            "data": data,
        }
        return json.dumps(body, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, raw: str | bytes, traceparent: str | None = None) -> Event:
        try:
            body = json.loads(raw)
        except (TypeError, ValueError, UnicodeDecodeError) as exc:
            raise EventError(f"not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise EventError("event is not a JSON object")
        try:
            env = _ENVELOPE.load(body)
            data = _schema_for(env["type"], env["data"]).load(env["data"])  # type: ignore[union-attr]
        except ValidationError as exc:
            raise EventError(f"schema: {exc.messages}") from exc
        return cls(type=env["type"], tenant_id=env["tenant_id"], data=data, id=env["id"],
                   occurred_at=env["occurred_at"], correlation_id=env["correlation_id"],
                   version=env["version"], traceparent=traceparent)


def make(type_: str, tenant_id: uuid.UUID | str | None, correlation_id: str | None = None,
         **data: Any) -> Event:
    """Build an event; the data is validated when it is serialised."""
    tid = uuid.UUID(str(tenant_id)) if tenant_id else None
    return Event(type=type_, tenant_id=tid, data=data, correlation_id=correlation_id)


def expand_body(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A decoded event body as one body per item: a batch's items each in a copy of its
    envelope (the id left as the batch's, the correlation id the item's own); any other
    event as it is.  For tools and
    tests that read the outbox or a dead-letter queue as JSON."""
    data = body.get("data")
    if body.get("type") in BATCHED and isinstance(data, dict) and "items" in data:
        return [{**body, "data": item,
                 "correlation_id": item.get("correlation_id") or body.get("correlation_id")}
                for item in data["items"]]
    return [body]


def batches(type_: str, tenant_id: uuid.UUID | str | None, items: list[dict[str, Any]],
            correlation_id: str | None = None, size: int = MAX_ITEMS) -> list[Event]:
    """Events of a batched type carrying ``items`` (one tenant's), ``size`` at most each."""
    if type_ not in BATCHED:
        raise EventError(f"{type_} events do not carry batches")
    size = max(1, min(size, MAX_ITEMS))
    tid = uuid.UUID(str(tenant_id)) if tenant_id else None
    return [Event(type=type_, tenant_id=tid, data={"items": items[i:i + size]},
                  correlation_id=correlation_id)
            for i in range(0, len(items), size)]
