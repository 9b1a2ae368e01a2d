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

from shared.db import UTCDateTime, new_metadata, utcnow

CAMPAIGN_KINDS = ("broadcast",)          # later: "collection", "appointment"
CAMPAIGN_STATUSES = ("scheduled", "paused", "completed", "archived")
# A campaign in one of these may not send: its occurrences wait (and are not lag).
HELD = ("paused", "archived")
OCCURRENCE_STATUSES = ("pending", "emitting", "completed")
UNFINISHED = ("pending", "emitting")


class Base(DeclarativeBase):
    metadata = new_metadata()


class Subscriber(Base):
    """A citizen who asked for reminders: a phone and/or an email, and attributes."""

    __tablename__ = "subscribers"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "phone"),
        sa.UniqueConstraint("tenant_id", "email"),
        # the ticker walks a tenant's subscribers in id order, batch after batch
        sa.Index("ix_subscribers_tenant_id_id", "tenant_id", "id"),
        sa.Index("ix_subscribers_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    phone: Mapped[str | None] = mapped_column(sa.String(20))            # E.164
    email: Mapped[str | None] = mapped_column(sa.String(320))           # lower-cased
    language: Mapped[str | None] = mapped_column(sa.String(2))          # cy, en, None = unknown
    attributes: Mapped[dict] = mapped_column(sa.JSON, default=dict)     # round, uprn, address...
    opted_out: Mapped[bool] = mapped_column(sa.Boolean, default=False)
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
    send_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    audience: Mapped[dict] = mapped_column(sa.JSON, default=dict)        # {} = everyone
    personalisation: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    urgent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
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
