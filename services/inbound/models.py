"""The inbound service's own tables (beside the kernel's outbox, inbox and tenant replica)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import pii
from shared.db import EncryptedJSON, EncryptedText, UTCDateTime, new_metadata, utcnow

PROVIDERS = ("twilio", "notify")
REQUEST_STATUSES = ("open", "closed")     # Open311 GeoReport v2 knows these two


class Base(DeclarativeBase):
    metadata = new_metadata()


class InboundMessage(Base):
    """A text a citizen sent to one of a tenant's numbers, exactly as the provider gave it."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        # A provider retrying its webhook sends the same reference again: the
        # constraint is what makes that retry a no-op, even when two arrive at once.
        sa.UniqueConstraint("provider", "provider_reference"),
        sa.Index("ix_inbound_messages_tenant_received", "tenant_id", "received_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    provider: Mapped[str] = mapped_column(sa.String(16))
    # Twilio's MessageSid, or GOV.UK Notify's received-text id
    provider_reference: Mapped[str] = mapped_column(sa.String(64))
    from_number: Mapped[str] = mapped_column(EncryptedText)   # the citizen's number
    to_number: Mapped[str] = mapped_column(sa.String(32))     # the tenant's number
    body: Mapped[str] = mapped_column(EncryptedText)          # the citizen's words
    keyword: Mapped[str | None] = mapped_column(sa.String(32))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # HYS-XXXXXX: what the citizen's answer quotes (and the request's, if it made one)
    reference: Mapped[str | None] = mapped_column(sa.String(16), unique=True)
    # what the platform did with it: "question", "missed", "confirm", "opt_out"...
    action: Mapped[str | None] = mapped_column(sa.String(32))


class Conversation(Base):
    """The last text the platform sent to a citizen from a tenant: the context of a reply.

    A reply of "2" or "CANSLO 4821" means something only next to the reminder it
    answers; this row says which one that was.  Found by ``recipient_hash``
    (shared.pii.lookup_hash); the number itself is encrypted.
    """

    __tablename__ = "conversations"

    tenant_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    recipient_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True,
                                                default=pii.hash_of("recipient"))
    recipient: Mapped[str] = mapped_column(EncryptedText)
    notification_id: Mapped[str] = mapped_column(sa.String(36))
    campaign_id: Mapped[str | None] = mapped_column(sa.String(36))
    appointment_id: Mapped[str | None] = mapped_column(sa.String(36))
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # the appointment's own reference ("A-1001") and reply code ("4821"), from the sent event
    appointment_reference: Mapped[str | None] = mapped_column(sa.String(64))
    reply_code: Mapped[str | None] = mapped_column(sa.String(16))
    # the language that text went in ("cy", "en", "cy+en"): a reply is answered in it
    # when the citizen has no language recorded
    language: Mapped[str | None] = mapped_column(sa.String(8))


class Reference(Base):
    """Every HYS-XXXXXX ever handed out, so one never names two things."""

    __tablename__ = "issued_references"

    reference: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class KeywordSet(Base):
    """A tenant's own keywords (MISSED, PRYD, ...), replacing the defaults where set."""

    __tablename__ = "keyword_sets"

    tenant_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    # {intent: {"cy": [phrase, ...], "en": [...]}}
    keywords: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReplyTextSet(Base):
    """A tenant's own wording of the auto-replies, replacing the platform's where set."""

    __tablename__ = "reply_texts"

    tenant_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    # {kind: {"cy": text, "en": text}}
    texts: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # the council's or clinic's phone number, named in HELP and the unknown-code answer
    contact_phone: Mapped[str | None] = mapped_column(sa.String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LanguagePreference(Base):
    """The language a citizen asked for by text (CYMRAEG / ENGLISH), found by
    ``phone_hash`` (shared.pii.lookup_hash); the number itself is encrypted."""

    __tablename__ = "language_preferences"

    tenant_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    phone_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True,
                                            default=pii.hash_of("phone"))
    phone: Mapped[str] = mapped_column(EncryptedText)
    language: Mapped[str] = mapped_column(sa.String(2))
    source: Mapped[str] = mapped_column(sa.String(16), default="reply")
    message_id: Mapped[str | None] = mapped_column(sa.String(36))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServiceRequest(Base):
    """A report for the tenant's team: a missed collection, a question.

    The columns follow Open311 GeoReport v2's request fields, so the Open311
    view is a projection of this row and nothing else.
    """

    __tablename__ = "service_requests"
    __table_args__ = (
        sa.Index("ix_service_requests_tenant_requested", "tenant_id", "requested_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    reference: Mapped[str] = mapped_column(sa.String(16), unique=True)
    token: Mapped[str] = mapped_column(sa.String(36), unique=True)
    service_code: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    # the team's notes (texted to the citizen, never public)
    status_notes: Mapped[str | None] = mapped_column(sa.Text)
    # what Open311's public reads show as status_notes: set explicitly by the team
    public_status_notes: Mapped[str | None] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(EncryptedText)   # often a reply's text
    agency_responsible: Mapped[str | None] = mapped_column(sa.String(200))
    service_notice: Mapped[str | None] = mapped_column(sa.Text)
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # the citizen's details are personal data: encrypted at rest (docs/personal-data.md)
    address: Mapped[str | None] = mapped_column(EncryptedText)
    address_id: Mapped[str | None] = mapped_column(EncryptedText)      # the UPRN
    zipcode: Mapped[str | None] = mapped_column(EncryptedText)
    lat: Mapped[float | None] = mapped_column(sa.Float)
    long: Mapped[float | None] = mapped_column(sa.Float)
    media_url: Mapped[str | None] = mapped_column(EncryptedText)
    attributes: Mapped[dict] = mapped_column(EncryptedJSON, default=dict)
    # who asked: a citizen's text ("sms") or an Open311 client ("open311")
    source: Mapped[str] = mapped_column(sa.String(16))
    phone: Mapped[str | None] = mapped_column(EncryptedText)
    email: Mapped[str | None] = mapped_column(EncryptedText)
    first_name: Mapped[str | None] = mapped_column(EncryptedText)
    last_name: Mapped[str | None] = mapped_column(EncryptedText)
    account_id: Mapped[str | None] = mapped_column(EncryptedText)
    device_id: Mapped[str | None] = mapped_column(EncryptedText)
    language: Mapped[str | None] = mapped_column(sa.String(2))
    # the text that made it, if one did: one text makes at most one request
    message_id: Mapped[str | None] = mapped_column(sa.String(36), unique=True)


class ServiceRequestChange(Base):
    """One step of a request's status history (the first is its creation)."""

    __tablename__ = "service_request_changes"

    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                     primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    status_notes: Mapped[str | None] = mapped_column(sa.Text)
    changed_by: Mapped[str] = mapped_column(sa.String(64))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- the staff inbox: conversations per citizen per tenant (services/inbound/conversations.py)

CONVERSATION_STATUSES = ("open", "closed")


class ConversationThread(Base):
    """One citizen's conversation with one tenant: open while it waits for a person.

    Beside :class:`Conversation` (the last text sent, the context a reply is read
    in), not instead of it: that row is replaced by every send, this one keeps them.
    """

    __tablename__ = "conversation_threads"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "phone_hash"),
        sa.Index("ix_conversation_threads_tenant_last", "tenant_id", "last_message_at", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    # the citizen's number, encrypted; found by its keyed hash (shared.pii)
    phone: Mapped[str] = mapped_column(EncryptedText)
    phone_hash: Mapped[str] = mapped_column(sa.String(64), default=pii.hash_of("phone"))
    status: Mapped[str] = mapped_column(sa.String(8), default="closed")
    assigned_to: Mapped[str | None] = mapped_column(sa.String(320))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_message_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationMessage(Base):
    """One message in or out of a conversation, with what it was about."""

    __tablename__ = "conversation_messages"
    __table_args__ = (
        sa.Index("ix_conversation_messages_conversation_at", "conversation_id", "at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(sa.String(36))
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    direction: Mapped[str] = mapped_column(sa.String(3))          # in, out
    # reply, auto_reply, notification, staff_answer, status_update
    kind: Mapped[str] = mapped_column(sa.String(16))
    body: Mapped[str | None] = mapped_column(EncryptedText)
    language: Mapped[str | None] = mapped_column(sa.String(2))
    keyword: Mapped[str | None] = mapped_column(sa.String(32))
    action: Mapped[str | None] = mapped_column(sa.String(32))
    reference: Mapped[str | None] = mapped_column(sa.String(16))
    service_request: Mapped[str | None] = mapped_column(sa.String(16))
    campaign_id: Mapped[str | None] = mapped_column(sa.String(36))
    appointment_id: Mapped[str | None] = mapped_column(sa.String(36))
    appointment_reference: Mapped[str | None] = mapped_column(sa.String(64))
    # an out message is the notification notify sends: one row per notification
    notification_id: Mapped[str | None] = mapped_column(sa.String(36), unique=True)
    inbound_message_id: Mapped[str | None] = mapped_column(sa.String(36), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16))             # received, requested, sent
    author: Mapped[str | None] = mapped_column(sa.String(320))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServiceTypeSet(Base):
    """A tenant's own service types (``PUT /api/service-types``), replacing the defaults."""

    __tablename__ = "service_type_sets"

    tenant_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    # [{code, name: {cy, en}, description: {cy, en}, keywords: {cy: [], en: []}, group,
    #   attributes: [...]}], in the tenant's order
    types: Mapped[list] = mapped_column(sa.JSON, default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


metadata = Base.metadata

pii.keep_hashed(Conversation, {"recipient_hash": "recipient"})
pii.keep_hashed(LanguagePreference, {"phone_hash": "phone"})
pii.keep_hashed(ConversationThread, {"phone_hash": "phone"})
