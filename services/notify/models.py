"""The notify service's own tables (beside the kernel's outbox, inbox and tenants)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import deliveries, pii
from shared.db import EncryptedJSON, EncryptedText, UTCDateTime, new_metadata, utcnow

STATUSES = ("created", "sending", "sent", "delivered", "permanent-failure",
            "temporary-failure", "technical-failure", "suppressed", "deferred")
FINAL = ("delivered", "permanent-failure", "temporary-failure", "technical-failure", "suppressed")


class Base(DeclarativeBase):
    metadata = new_metadata()


class Template(Base):
    __tablename__ = "templates"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(8))
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    body_en: Mapped[str] = mapped_column(sa.Text)
    body_cy: Mapped[str] = mapped_column(sa.Text)
    subject_en: Mapped[str | None] = mapped_column(sa.Text)
    subject_cy: Mapped[str | None] = mapped_column(sa.Text)
    archived: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(sa.String(36))


class TemplateVersion(Base):
    """Every version a template has had: a notification keeps the one it used."""

    __tablename__ = "template_versions"

    template_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    name: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(8))
    body_en: Mapped[str] = mapped_column(sa.Text)
    body_cy: Mapped[str] = mapped_column(sa.Text)
    subject_en: Mapped[str | None] = mapped_column(sa.Text)
    subject_cy: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_dispatch", "status", "urgent", "not_before"),
        sa.Index("ix_notifications_tenant_created", "tenant_id", "created_at"),
        sa.Index("ix_notifications_tenant_recipient", "tenant_id", "recipient_hash"),
        # the dispatcher's queue (migration 0004): only rows waiting to be sent
        sa.Index("ix_notifications_queue", "tenant_id", sa.text("urgent DESC"), "created_at",
                 postgresql_where=sa.text("status = 'created'"),
                 sqlite_where=sa.text("status = 'created'")),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    template_id: Mapped[str] = mapped_column(sa.String(36))
    template_version: Mapped[int] = mapped_column(sa.Integer)
    api_key_id: Mapped[str | None] = mapped_column(sa.String(36))
    key_type: Mapped[str] = mapped_column(sa.String(8), default="live")
    channel: Mapped[str] = mapped_column(sa.String(8))
    recipient: Mapped[str | None] = mapped_column(EncryptedText)    # personal: encrypted
    # its keyed hash (shared.pii), for "who was sent what" searches by number or email;
    # filled by the column default on every insert path
    recipient_hash: Mapped[str | None] = mapped_column(sa.String(64),
                                                       default=pii.hash_of("recipient"))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    # the rendered message (personalised): encrypted at rest
    body: Mapped[str | None] = mapped_column(EncryptedText)
    subject: Mapped[str | None] = mapped_column(EncryptedText)
    reference: Mapped[str | None] = mapped_column(sa.String(1000), index=True)
    status: Mapped[str] = mapped_column(sa.String(24), default="created")
    status_reason: Mapped[str | None] = mapped_column(sa.String(500))
    provider: Mapped[str | None] = mapped_column(sa.String(32))
    provider_reference: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    urgent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    encoding: Mapped[str | None] = mapped_column(sa.String(8))
    fragment_count: Mapped[int | None] = mapped_column(sa.Integer)
    campaign_id: Mapped[str | None] = mapped_column(sa.String(36))
    occurrence_key: Mapped[str | None] = mapped_column(sa.String(200))
    appointment_id: Mapped[str | None] = mapped_column(sa.String(36))
    # the board's reference and the reply code of the appointment reminded (migration 0006)
    appointment_reference: Mapped[str | None] = mapped_column(sa.String(100))
    reply_code: Mapped[str | None] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    sender: Mapped[str | None] = mapped_column(sa.String(32))
    # GOV.UK Notify's email options, honoured by the adapters: the Reply-To address (one
    # of the tenant's email_reply_to) and the one-click unsubscribe link (RFC 8058; it may
    # carry a token that names the recipient, so it is encrypted like the body)
    reply_to: Mapped[str | None] = mapped_column(sa.String(320))
    unsubscribe_url: Mapped[str | None] = mapped_column(EncryptedText)
    bulk_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    # set just before a provider is called: a row found 'sending' with this set and
    # no outcome had its hand-off interrupted (the sweeper must not send it again)
    handoff_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # the W3C traceparent of the request or event that made it (migration 0009): the
    # dispatcher's provider call joins that trace (shared/tracing.py)
    traceparent: Mapped[str | None] = mapped_column(sa.String(64))
    # the correlation id of the request or event that made it (migration 0012): every
    # status event and every dispatcher log line about it carries this id
    correlation_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Suppression(Base):
    """Recipients who opted out of a tenant's messages (by reply, or by the team).

    Found by ``recipient_hash`` (shared.pii.lookup_hash); the number or address itself
    is encrypted."""

    __tablename__ = "suppressions"

    tenant_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    recipient_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True,
                                                default=pii.hash_of("recipient"))
    recipient: Mapped[str] = mapped_column(EncryptedText)
    source: Mapped[str] = mapped_column(sa.String(32), default="reply")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReceivedText(Base):
    """Replies, kept for GET /v2/received-text-messages."""

    __tablename__ = "received_texts"
    __table_args__ = (sa.Index("ix_received_texts_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    user_number: Mapped[str] = mapped_column(EncryptedText)     # the citizen's number
    notify_number: Mapped[str] = mapped_column(sa.String(32))
    content: Mapped[str] = mapped_column(EncryptedText)       # the citizen's words
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class UsageCounter(Base):
    """Fixed-window counters: requests per API key per minute, messages per tenant per day."""

    __tablename__ = "usage_counters"

    scope: Mapped[str] = mapped_column(sa.String(16), primary_key=True)     # "key-minute", "tenant-day"
    subject: Mapped[str] = mapped_column(sa.String(36), primary_key=True)   # key id / tenant id
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(sa.Integer, default=0)


class BulkJob(Base):
    """A CSV or JSON bulk send: progress and per-row errors for GET /api/bulk/{id}."""

    __tablename__ = "bulk_jobs"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    template_id: Mapped[str] = mapped_column(sa.String(36))
    channel: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16), default="processing")
    total_rows: Mapped[int] = mapped_column(sa.Integer, default=0)
    accepted: Mapped[int] = mapped_column(sa.Integer, default=0)
    rejected: Mapped[int] = mapped_column(sa.Integer, default=0)
    errors: Mapped[list] = mapped_column(EncryptedJSON, default=list)    # may quote recipients
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ProviderState(Base):
    """Provider health as the dispatchers see it (circuit state, recent errors, latency),
    written by the worker so the API process (/ops, /metrics) can show it."""

    __tablename__ = "provider_states"

    provider: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    circuit: Mapped[str] = mapped_column(sa.String(16), default="closed")
    recent_calls: Mapped[int] = mapped_column(sa.Integer, default=0)
    recent_errors: Mapped[int] = mapped_column(sa.Integer, default=0)
    latency_p50_ms: Mapped[float | None] = mapped_column(sa.Float)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StatusCallback(deliveries.DeliveryColumns, Base):
    """A delivery-status callback owed to a tenant's URL (services/notify/status_callbacks.py).

    Recorded in the transaction that handles the outcome's event and sent after it
    commits, outside any transaction (shared/deliveries.py: attempts, next attempt,
    delivered or given up); the body is built from the notification at send time, so
    the row keeps no URL, token or payload.  The id is derived from (notification,
    status): a redelivered event records nothing new."""

    __tablename__ = "status_callbacks"
    __table_args__ = (
        # the sender's queue (migration 0013): only rows still to be sent
        sa.Index("ix_status_callbacks_due", "next_attempt_at",
                 postgresql_where=sa.text(deliveries.PENDING),
                 sqlite_where=sa.text(deliveries.PENDING)),
    )

    notification_id: Mapped[str] = mapped_column(sa.String(36))
    status: Mapped[str] = mapped_column(sa.String(24))


metadata = Base.metadata

pii.keep_hashed(Suppression, {"recipient_hash": "recipient"})
