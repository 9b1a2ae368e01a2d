"""The console's tables in notify's database (migration 0010).

* ``staff_users`` — a council's people who sign in to the console: one tenant each,
  a role, an argon2 password hash (or none, for OpenID Connect only), the lockout
  counters.
* ``staff_invites`` — an invitation by email: only the SHA-256 of its token is kept.
* ``staff_sessions`` — a signed-in browser: only the SHA-256 of its session id is
  kept; signing out, a removal or a role change ends it server-side.
* ``audit_log`` — every change made in the console or the API (see ``audit.py``).
* ``console_settings`` — per tenant: the invitation template, the council's OpenID
  Connect provider (client secret encrypted at rest).
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from services.notify.models import Base
from shared.db import EncryptedText, UTCDateTime, utcnow

ROLES = ("admin", "editor", "sender", "viewer")


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (sa.Index("ix_staff_users_tenant", "tenant_id", "email"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    # lower case; one account per address on the platform, so signing in needs no council
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    oidc_subject: Mapped[str | None] = mapped_column(sa.String(255))
    language: Mapped[str | None] = mapped_column(sa.String(2))
    failed_attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_signed_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffInvite(Base):
    __tablename__ = "staff_invites"
    __table_args__ = (sa.Index("ix_staff_invites_tenant", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    email: Mapped[str] = mapped_column(sa.String(320))
    role: Mapped[str] = mapped_column(sa.String(16))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by: Mapped[str | None] = mapped_column(sa.String(36))
    notification_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class StaffSession(Base):
    __tablename__ = "staff_sessions"

    id_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_tenant", "tenant_id", "id"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str | None] = mapped_column(sa.String(36))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    service: Mapped[str] = mapped_column(sa.String(16), default="notify")
    via: Mapped[str] = mapped_column(sa.String(16))            # console, api, admin, event
    actor_type: Mapped[str] = mapped_column(sa.String(16))     # staff, api_key, operator, system
    actor_id: Mapped[str | None] = mapped_column(sa.String(64))
    actor_label: Mapped[str | None] = mapped_column(sa.String(320))
    action: Mapped[str] = mapped_column(sa.String(64))
    target_type: Mapped[str | None] = mapped_column(sa.String(32))
    target_id: Mapped[str | None] = mapped_column(sa.String(64))
    before: Mapped[dict | None] = mapped_column(sa.JSON)
    after: Mapped[dict | None] = mapped_column(sa.JSON)
    correlation_id: Mapped[str | None] = mapped_column(sa.String(64))
    # an event-fed row (another service's change) is stored once: its event id
    event_id: Mapped[str | None] = mapped_column(sa.String(36), unique=True)


class ConsoleSettings(Base):
    __tablename__ = "console_settings"

    tenant_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    invite_template_id: Mapped[str | None] = mapped_column(sa.String(36))
    oidc_issuer: Mapped[str | None] = mapped_column(sa.String(500))
    oidc_client_id: Mapped[str | None] = mapped_column(sa.String(255))
    oidc_client_secret: Mapped[str | None] = mapped_column(EncryptedText)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
