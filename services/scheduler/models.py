"""The scheduler's own tables (beside the kernel's outbox, inbox and tenants).

A *campaign* says what to send to whom; an *occurrence* is one moment it is
sent (a broadcast has one; a collection round or an appointment will have
many).  The ticker works through occurrences, never through campaigns, so new
campaign kinds only need to create occurrences.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import pii
from shared.db import EncryptedJSON, EncryptedText, UTCDateTime, new_metadata, utcnow

CAMPAIGN_KINDS = ("broadcast", "collection", "appointment")
RECURRING = ("collection", "appointment")     # plan occurrences as time passes
CAMPAIGN_STATUSES = ("scheduled", "paused", "completed", "archived")
# A campaign in one of these may not send: its occurrences wait (and are not lag).
HELD = ("paused", "archived")
OCCURRENCE_STATUSES = ("pending", "emitting", "completed", "cancelled")
UNFINISHED = ("pending", "emitting")
APPOINTMENT_STATUSES = ("booked", "confirmed", "cancelled")


class Base(DeclarativeBase):
    metadata = new_metadata()


class Subscriber(Base):
    """A citizen who asked for reminders: a phone and/or an email, and attributes.

    All three are personal data, encrypted at rest: a subscriber is found by the keyed
    hash of their phone or email (shared.pii.lookup_hash), an audience filters on the
    keyed hashes of attribute values (``attribute_hashes``, shared.pii.attribute_hash).
    """

    __tablename__ = "subscribers"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "phone_hash"),
        sa.UniqueConstraint("tenant_id", "email_hash"),
        # the ticker walks a tenant's subscribers in id order, batch after batch
        sa.Index("ix_subscribers_tenant_id_id", "tenant_id", "id"),
        sa.Index("ix_subscribers_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    phone: Mapped[str | None] = mapped_column(EncryptedText)            # E.164
    email: Mapped[str | None] = mapped_column(EncryptedText)            # lower-cased
    phone_hash: Mapped[str | None] = mapped_column(sa.String(64), default=pii.hash_of("phone"))
    email_hash: Mapped[str | None] = mapped_column(sa.String(64), default=pii.hash_of("email"))
    language: Mapped[str | None] = mapped_column(sa.String(2))          # cy, en, None = unknown
    attributes: Mapped[dict] = mapped_column(EncryptedJSON, default=dict)   # round, uprn, address...
    # {attribute: keyed hash of its value}: what audience filters compare
    attribute_hashes: Mapped[dict | None] = mapped_column(
        sa.JSON, default=pii.attribute_hashes_of("attributes"))
    opted_out: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # The upload that last wrote this row: a second row for the same person in
    # one file is reported as a duplicate without holding the file in memory.
    upload_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Round(Base):
    """A collection round: which households (``attributes.round``) are collected when."""

    __tablename__ = "rounds"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    code: Mapped[str] = mapped_column(sa.String(64))          # matches attributes.round
    name: Mapped[str] = mapped_column(sa.String(200))
    rrule: Mapped[str] = mapped_column(sa.String(500))        # RFC 5545, dates only
    start: Mapped[dt.date] = mapped_column(sa.Date)           # DTSTART (a collection date)
    exdates: Mapped[list] = mapped_column(sa.JSON, default=list)   # ["2026-12-25"]
    moves: Mapped[list] = mapped_column(sa.JSON, default=list)     # [{"from", "to"}]
    description: Mapped[dict] = mapped_column(sa.JSON, default=dict)   # {"cy", "en"}: which bins
    personalisation: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Appointment(Base):
    """A health board's appointment, known by the board's own reference."""

    __tablename__ = "appointments"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "external_reference"),
                      sa.Index("ix_appointments_tenant_created", "tenant_id", "created_at"))

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    campaign_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    external_reference: Mapped[str] = mapped_column(sa.String(100))
    # the patient's contact and personalisation (a name) are encrypted at rest; "this
    # number's appointments" are found by phone_hash / email_hash (shared.pii.lookup_hash)
    phone: Mapped[str | None] = mapped_column(EncryptedText)
    email: Mapped[str | None] = mapped_column(EncryptedText)
    phone_hash: Mapped[str | None] = mapped_column(sa.String(64), index=True,
                                                   default=pii.hash_of("phone"))
    email_hash: Mapped[str | None] = mapped_column(sa.String(64), index=True,
                                                   default=pii.hash_of("email"))
    language: Mapped[str | None] = mapped_column(sa.String(2))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    personalisation: Mapped[dict] = mapped_column(EncryptedJSON, default=dict)
    offsets: Mapped[list | None] = mapped_column(sa.JSON)     # None: the campaign's
    # booked, confirmed, rearrange_requested (the patient asked), cancelled
    status: Mapped[str] = mapped_column(sa.String(24), default="booked")
    # what a citizen texts back ("CANSLO 4821"): short, unique among their live bookings
    reply_code: Mapped[str] = mapped_column(sa.String(8))
    status_source: Mapped[str | None] = mapped_column(sa.String(16))   # board, reply
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (sa.Index("ix_campaigns_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(16), default="broadcast")
    # notify's template id: trusted here, checked by notify (services share no tables)
    template_id: Mapped[str] = mapped_column(sa.String(36))
    channel: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16), default="scheduled")
    send_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)   # broadcasts only
    audience: Mapped[dict] = mapped_column(sa.JSON, default=dict)        # {} = everyone
    personalisation: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    urgent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # collection: {"rounds", "days_before", "at"}; appointment: {"offsets"}
    schedule: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    window: Mapped[dict | None] = mapped_column(sa.JSON)       # {"start", "end"} local times
    sender: Mapped[str | None] = mapped_column(sa.String(20))
    # SMS fragments a message costs: the team's figure, used only where notify's is unknown
    fragments: Mapped[int] = mapped_column(sa.Integer, default=1)
    # notify's count for the template: {"cy": n, "en": n, "cy+en": n} (capacity.py)
    fragments_by_language: Mapped[dict | None] = mapped_column(sa.JSON)
    # collection occurrences exist up to here; the ticker plans further as time passes
    planned_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Occurrence(Base):
    """One sending of a campaign, with the ticker's progress through the audience."""

    __tablename__ = "occurrences"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "occurrence_key"),
        sa.Index("ix_occurrences_due", "status", "due_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    campaign_id: Mapped[str] = mapped_column(sa.String(36))
    occurrence_key: Mapped[str] = mapped_column(sa.String(200))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    # narrows the campaign's audience ({"round": "A"}) and adds personalisation
    # (the collection date, which bins) for this occurrence only
    audience: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # an appointment reminder's carries the patient's (a name): encrypted at rest
    personalisation: Mapped[dict] = mapped_column(EncryptedJSON, default=dict)
    appointment_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    # the time the schedule said, when quiet hours or capacity moved due_at
    nominal_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(sa.String(300))    # why moved, skipped, cancelled
    # sends are spread: the n-th request is not_before send_from + n * spacing
    send_from: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    spacing: Mapped[float] = mapped_column(sa.Float, default=0.0)
    audience_size: Mapped[int] = mapped_column(sa.Integer, default=0)   # when planned
    requested: Mapped[int] = mapped_column(sa.Integer, default=0)
    skipped: Mapped[int] = mapped_column(sa.Integer, default=0)
    # The last subscriber id emitted: committed with each batch, so a crashed
    # ticker's successor resumes after it instead of starting again.
    cursor: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CampaignStat(Base):
    """How many of an occurrence's notifications reached each status (from notify's events)."""

    __tablename__ = "campaign_stats"

    campaign_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    occurrence_key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(24), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    count: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


metadata = Base.metadata

pii.keep_hashed(Subscriber, {"phone_hash": "phone", "email_hash": "email"},
                attributes=("attribute_hashes", "attributes"))
pii.keep_hashed(Appointment, {"phone_hash": "phone", "email_hash": "email"})
