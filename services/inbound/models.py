"""The inbound service's own tables (beside the kernel's outbox, inbox and tenant replica)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import UTCDateTime, new_metadata, utcnow

PROVIDERS = ("twilio", "notify")


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
    from_number: Mapped[str] = mapped_column(sa.String(32))
    to_number: Mapped[str] = mapped_column(sa.String(32))
    body: Mapped[str] = mapped_column(sa.Text)
    keyword: Mapped[str | None] = mapped_column(sa.String(32))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(Base):
    """The last text the platform sent to a citizen from a tenant: the context of a reply.

    A reply of "2" or "CANSLO 4821" means something only next to the reminder it
    answers; this row says which one that was.
    """

    __tablename__ = "conversations"

    tenant_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    recipient: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    notification_id: Mapped[str] = mapped_column(sa.String(36))
    campaign_id: Mapped[str | None] = mapped_column(sa.String(36))
    appointment_id: Mapped[str | None] = mapped_column(sa.String(36))
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


metadata = Base.metadata
