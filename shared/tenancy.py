"""Tenants, API keys and authentication.

The notify service owns tenants and keys; it announces every change as a
``tenant.changed`` snapshot (and ``api_key.revoked``).  The inbound and
scheduler services keep a replica of the same two tables, fed by those events,
so every service authenticates on its own database and a revoked key stops
working everywhere as soon as the event arrives (milliseconds).

API keys have GOV.UK Notify's format ``{key_name}-{tenant_id}-{secret}`` so
``notifications-python-client`` works unchanged: the client signs a JWT with the
secret (``iss`` = tenant id, HS256, ``iat``) and we verify it with that client
library's own server-side helpers.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import sqlalchemy as sa
from notifications_python_client.authentication import decode_jwt_token, get_token_issuer
from notifications_python_client.errors import (
    TokenAlgorithmError,
    TokenDecodeError,
    TokenError,
    TokenExpiredError,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared import events
from shared.crypto import SecretBox
from shared.db import KernelBase, UTCDateTime, utcnow
from shared.errors import ApiError, AuthError
from shared.tenant_cache import CachedKey, CachedTenant, TenantCache

log = logging.getLogger(__name__)
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
KEY_TYPES = ("live", "team", "test")
DEFAULT_CONFIG: dict[str, Any] = {
    "inbound_numbers": [],
    "sender_ids": [],
    "providers": ["simulator"],
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    # v2 API sends are transactional (GOV.UK Notify sends them at once): off by default
    "quiet_hours_for_api": False,
    # GOV.UK Notify's sms senders and reply-to addresses, chosen by sms_sender_id and
    # email_reply_to_id: [{"id", "sms_sender" | "email_address", "is_default"}]
    "sms_senders": [],
    "email_reply_to": [],
    "rate_limit_per_minute": 3000,
    "daily_message_limit": 250000,
    "retention_days": 7,
    "webhook_url": None,
    "delivery_status_url": None,
    "team_numbers": [],
    "capacity": {"segments_per_second": 10, "senders": 1},
}


class Tenant(KernelBase):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(63), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    default_language: Mapped[str] = mapped_column(sa.String(2), default="cy")
    config: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # provider credentials, webhook signing secret: encrypted with HYSBYS_SECRET_KEY
    config_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    revision: Mapped[int] = mapped_column(sa.Integer, default=1)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def setting(self, name: str):
        return (self.config or {}).get(name, DEFAULT_CONFIG.get(name))


class ReplicaMiss(AuthError):
    """The tenant or the key is not in this service's replica: perhaps only not yet (a
    tenant created a moment ago), so the owner (notify) may be asked (:class:`OwnerTenants`)."""

    def __init__(self, message: str, tenant_id: str):
        super().__init__(message, 403)
        self.tenant_id = tenant_id


class ApiKey(KernelBase):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    key_type: Mapped[str] = mapped_column(sa.String(8))
    secret_encrypted: Mapped[str] = mapped_column(sa.Text)
    scopes: Mapped[list] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the tenant and the key they signed with."""

    tenant_id: str
    tenant_slug: str
    key_id: str
    key_type: str
    scopes: tuple[str, ...]
    # the row authentication read, for a caller that goes on in the same request: a
    # session's identity map holds rows weakly, so without this reference a second
    # ``session.get`` would query again
    tenant: Tenant | None = field(default=None, compare=False, repr=False)
    # set when notify's console called on a signed-in staff member's behalf (the
    # token's ``sub``): the person, for the service's own records
    staff_id: str | None = None

    def allows(self, scope: str) -> bool:
        return not self.scopes or scope in self.scopes


def key_string(key_name: str, tenant_id: str, secret: str) -> str:
    """The API key a tenant is handed: ``{key_name}-{tenant_id}-{secret}``."""
    name = re.sub(r"[^a-z0-9_]+", "_", key_name.lower()).strip("_") or "key"
    return f"{name}-{tenant_id}-{secret}"


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthError("Unauthorized: authentication token must be provided", 401)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Unauthorized: authentication bearer scheme must be used", 401)
    return token.strip()


def authenticate(session: Session, box: SecretBox, authorization: str | None,
                 cache: TenantCache | None = None) -> Caller:
    """Check a Notify-style JWT; raise :class:`AuthError` (401/403) as GOV.UK Notify does.

    With ``cache``: one query for the tenant's stamp (:mod:`shared.tenant_cache`), and
    the tenant and its keys from the cache while the stamp is unchanged."""
    token = bearer_token(authorization)
    try:
        issuer = get_token_issuer(token)
    except TokenError as exc:
        raise AuthError("Invalid token: signature, api token not found", 403) from exc
    try:
        tenant_id = str(uuid.UUID(str(issuer)))
    except ValueError as exc:
        raise AuthError("Invalid token: service id is not the right data type", 403) from exc
    entry = None
    if cache is not None:
        stamp = tenant_stamp(session, tenant_id)
        if stamp is None:
            cache.forget(tenant_id)
            raise ReplicaMiss("Invalid token: service not found", tenant_id)
        entry = cache.get(tenant_id, stamp)
    if entry is None:
        entry = _load(session, box, tenant_id)
        if cache is not None:
            cache.put(tenant_id, entry.stamp, entry)
    return _caller(token, entry, box)


def tenant_stamp(session: Session, tenant_id: str) -> tuple | None:
    """(revision, active, keys, revoked keys) of one tenant in one statement; None if the
    tenant is unknown here.  Any change to the tenant or its keys changes it."""
    keys = sa.select(sa.func.count()).where(ApiKey.tenant_id == Tenant.id)
    revoked = keys.where(ApiKey.revoked_at.is_not(None))
    row = session.execute(sa.select(
        Tenant.revision, Tenant.active, keys.scalar_subquery(), revoked.scalar_subquery(),
    ).where(Tenant.id == tenant_id)).first()
    return None if row is None else tuple(row)


def _load(session: Session, box: SecretBox, tenant_id: str) -> CachedTenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise ReplicaMiss("Invalid token: service not found", tenant_id)
    keys = session.scalars(sa.select(ApiKey).where(ApiKey.tenant_id == tenant_id)
                           .order_by(ApiKey.created_at, ApiKey.id)).all()
    cached = tuple(CachedKey(id=k.id, key_type=k.key_type, scopes=tuple(k.scopes or ()),
                             secret=box.decrypt(k.secret_encrypted), revoked=k.revoked_at is not None)
                   for k in keys)
    stamp = (tenant.revision, tenant.active, len(keys), sum(k.revoked for k in cached))
    return CachedTenant(stamp=stamp, tenant=detached_copy(tenant), keys=cached)


def detached_copy(tenant: Tenant) -> Tenant:
    """A copy of ``tenant`` that belongs to no session (shared between requests)."""
    return Tenant(**{c.key: getattr(tenant, c.key) for c in Tenant.__table__.columns})


def _caller(token: str, entry: CachedTenant, box: SecretBox) -> Caller:
    tenant = entry.tenant
    if not tenant.active:
        raise AuthError("Invalid token: service is archived", 403)
    console = _console_caller(token, tenant, box)
    if console is not None:
        return console
    if not entry.keys:
        raise ReplicaMiss("Invalid token: service has no API keys", tenant.id)
    for key in entry.keys:
        try:
            decode_jwt_token(token, key.secret)
        except TokenExpiredError as exc:
            raise AuthError("Error: Your system clock must be accurate to within 30 seconds",
                            403) from exc
        except TokenAlgorithmError as exc:
            raise AuthError("Invalid token: algorithm used is not HS256", 403) from exc
        except TokenDecodeError:
            continue   # not signed with this key: try the tenant's next one
        except TokenError as exc:
            raise AuthError("Invalid token: signature, api token not found", 403) from exc
        if key.revoked:
            raise AuthError("Invalid token: API key revoked", 403)
        return Caller(tenant_id=tenant.id, tenant_slug=tenant.slug, key_id=key.id,
                      key_type=key.key_type, scopes=key.scopes, tenant=tenant)
    raise ReplicaMiss("Invalid token: API key not found", tenant.id)


# -- the console's own token (notify's console calling inbound and the scheduler) -------

CONSOLE_KEY_ID = "console"


def console_purpose(tenant_id: str) -> str:
    return f"hysbys console api v1:{tenant_id}"


def console_token(box: SecretBox, tenant_id: str, staff_id: str | None = None) -> str:
    """A Notify-style JWT (``iss`` = tenant id, HS256, ``iat`` now) signed with the tenant's
    console secret, derived from the platform key (docs/decisions.md, "How the console
    calls the other services"): no key row, nothing replicated, nothing a tenant can list,
    leak from the API or revoke by mistake.  ``sub`` names the staff member."""
    claims: dict[str, Any] = {"iss": tenant_id, "iat": int(time.time())}
    if staff_id:
        claims["sub"] = staff_id
    return jwt.encode(claims, box.derived(console_purpose(tenant_id))[0], algorithm="HS256",
                      headers={"typ": "JWT", "alg": "HS256"})


def _console_caller(token: str, tenant: Tenant, box: SecretBox) -> Caller | None:
    """The console's caller when ``token`` is signed with this tenant's console secret."""
    for secret in box.derived(console_purpose(tenant.id)):
        try:
            decode_jwt_token(token, secret)
        except TokenExpiredError as exc:
            raise AuthError("Error: Your system clock must be accurate to within 30 seconds",
                            403) from exc
        except TokenError:
            continue
        staff = jwt.decode(token, options={"verify_signature": False}).get("sub")
        return Caller(tenant_id=tenant.id, tenant_slug=tenant.slug, key_id=CONSOLE_KEY_ID,
                      key_type="live", scopes=(), tenant=tenant,
                      staff_id=str(staff)[:64] if staff else None)
    return None


# -- the owner's side (notify) -------------------------------------------------

def snapshot_event(tenant: Tenant, keys: list[ApiKey], correlation_id: str | None = None
                   ) -> events.Event:
    return events.make(
        "tenant.changed", tenant.id, correlation_id,
        slug=tenant.slug, name=tenant.name, revision=tenant.revision,
        default_language=tenant.default_language, config=tenant.config or {},
        config_encrypted=tenant.config_encrypted, active=tenant.active,
        api_keys=[{"id": k.id, "name": k.name, "key_type": k.key_type,
                   "secret_encrypted": k.secret_encrypted, "scopes": k.scopes or [],
                   "revoked_at": k.revoked_at} for k in keys])


def validate_slug(slug: Any) -> str:
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise ApiError("slug must be 1-63 lower-case letters, digits or hyphens, "
                       "starting and ending with a letter or digit", 400, "ValidationError")
    return slug


# -- the replicas' side (inbound, scheduler) -----------------------------------

def apply_tenant_changed(event: events.Event, session: Session) -> None:
    """Bring the local replica up to the snapshot, unless it is already newer."""
    data = event.data
    tenant_id = str(event.tenant_id)
    tenant = session.get(Tenant, tenant_id)
    if tenant is not None and tenant.revision >= data["revision"]:
        return
    if tenant is None:
        tenant = Tenant(id=tenant_id)
        session.add(tenant)
    tenant.slug = data["slug"]
    tenant.name = data["name"]
    tenant.default_language = data["default_language"]
    tenant.config = data["config"]
    tenant.config_encrypted = data.get("config_encrypted")
    tenant.revision = data["revision"]
    tenant.active = data.get("active", True)
    tenant.updated_at = utcnow()
    existing = {k.id: k for k in session.scalars(
        sa.select(ApiKey).where(ApiKey.tenant_id == tenant_id))}
    for rec in data.get("api_keys", []):
        key_id = str(rec["id"])
        key = existing.get(key_id)
        if key is None:
            key = ApiKey(id=key_id, tenant_id=tenant_id)
            session.add(key)
        key.name = rec["name"]
        key.key_type = rec["key_type"]
        key.secret_encrypted = rec["secret_encrypted"]
        key.scopes = rec.get("scopes") or []
        # a revocation seen earlier (api_key.revoked) is never undone by an older snapshot
        key.revoked_at = key.revoked_at or rec.get("revoked_at")
    session.flush()


def apply_api_key_revoked(event: events.Event, session: Session) -> None:
    key = session.get(ApiKey, str(event.data["key_id"]))
    if key is not None and key.revoked_at is None:
        key.revoked_at = event.data["revoked_at"]


TENANCY_HANDLERS = {
    "tenant.changed": [apply_tenant_changed],
    "api_key.revoked": [apply_api_key_revoked],
}


class OwnerTenants:
    """A replica's way to a tenant it does not know yet: ask the owner, notify.

    A tenant created through ``POST /admin/tenants`` or the CLI reaches the inbound and
    scheduler replicas by its ``tenant.changed`` event, milliseconds to a second later;
    a call made with its key in between is not refused: on a miss (:class:`ReplicaMiss`)
    the service fetches the snapshot from notify's ``GET /internal/tenants/<id>`` (admin
    token), applies it to its replica exactly as the event would be applied, and
    authenticates again.  The replica row is the cache; the next ``tenant.changed``
    (a newer revision) replaces it.  A key that is really unknown is still refused, and
    a revoked key too (the snapshot carries ``revoked_at``).

    So that refused calls cannot make a service ask notify at their own pace, a tenant
    id whose fetch brought nothing new is not asked about again for ``quiet_seconds``.
    """

    def __init__(self, base_url: str, admin_token: str, http=None, *, timeout: float = 2.0,
                 quiet_seconds: float = 2.0, clock=None):
        import threading
        import time

        import requests

        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self.http = http or requests.Session()
        self.timeout = timeout
        self.quiet_seconds = quiet_seconds
        self.clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._fruitless: dict[str, float] = {}

    def snapshot(self, tenant_id: str) -> events.Event | None:
        """The owner's ``tenant.changed`` snapshot of ``tenant_id``, or None (unknown to
        notify too, or notify did not answer: the caller is then refused as before)."""
        import requests

        try:
            resp = self.http.get(f"{self.base_url}/internal/tenants/{tenant_id}",
                                 timeout=self.timeout,
                                 headers={"Authorization": f"Bearer {self.admin_token}"})
        except requests.RequestException as exc:
            log.warning("notify did not answer a tenant look-up: %s", type(exc).__name__)
            return None
        if resp.status_code != 200:
            if resp.status_code != 404:
                log.warning("notify answered a tenant look-up with %s", resp.status_code)
            return None
        try:
            event = events.Event.from_json(resp.content)
        except events.EventError as exc:
            log.warning("notify's tenant snapshot is not the contract: %s", exc)
            return None
        if event.type != "tenant.changed" or str(event.tenant_id) != tenant_id:
            log.warning("notify's tenant snapshot is for another tenant")
            return None
        return event

    def refresh(self, db, tenant_id: str) -> bool:
        """Bring ``tenant_id`` into the replica from the owner; True if the owner answered
        (authenticate again: the replica is now as current as notify, even where the
        event arrived in the meantime), False if there is nothing to look at again."""
        now = self.clock()
        with self._lock:
            until = self._fruitless.get(tenant_id)
            if until is not None and until > now:
                return False
            if len(self._fruitless) > 10_000:      # ids from refused calls: bounded
                self._fruitless.clear()
        event = self.snapshot(tenant_id)
        changed = False
        if event is not None:
            try:
                with db.transaction() as session:
                    before = session.get(Tenant, tenant_id)
                    old = before.revision if before is not None else None
                    apply_tenant_changed(event, session)
                    changed = old is None or old < event.data["revision"]
            except sa.exc.IntegrityError:
                changed = True    # the event arrived at the same moment and was applied
        if not changed:
            with self._lock:
                self._fruitless[tenant_id] = now + self.quiet_seconds
        return event is not None


def numbers_table(session: Session, *, besides: str | None = None) -> dict[str, Tenant]:
    """``inbound number → tenant`` over the active tenants (but ``besides``).  Where two
    tenants list one number (notify's admin API refuses it with a 409, but two operators
    at the same instant could both succeed), the one this database has had longest has it."""
    query = sa.select(Tenant).where(Tenant.active.is_(True)).order_by(Tenant.created_at, Tenant.id)
    if besides is not None:
        query = query.where(Tenant.id != besides)
    table: dict[str, Tenant] = {}
    for tenant in session.scalars(query):
        for number in (tenant.config or {}).get("inbound_numbers") or []:
            table.setdefault(number, tenant)
    return table


class TenantNumbers:
    """:func:`numbers_table`, kept per process for inbound's webhooks.

    A reply names only the number it was sent to, so finding its tenant read every
    active tenant's row and looked through each one's numbers, on every reply.  This
    keeps the table of numbers (detached copies of the tenants) and checks it with one
    aggregate over the tenants, their *stamp*: ``(tenants, active tenants, sum of
    revisions)``.  Every change to a tenant bumps its revision, here by the owner or by
    the replica applying ``tenant.changed``, so any change (a number added or moved, a
    tenant archived) changes the sum and the table is read again at the next reply."""

    def __init__(self) -> None:
        # (stamp, table), replaced whole: a thread reads one or the other, never half
        self._kept: tuple[tuple, dict[str, Tenant]] | None = None

    @staticmethod
    def stamp(session: Session) -> tuple:
        active = sa.func.coalesce(sa.func.sum(sa.case((Tenant.active.is_(True), 1), else_=0)), 0)
        return tuple(session.execute(sa.select(
            sa.func.count(), active, sa.func.coalesce(sa.func.sum(Tenant.revision), 0))).one())

    def find(self, session: Session, number: str) -> Tenant | None:
        stamp, kept = self.stamp(session), self._kept
        if kept is None or kept[0] != stamp:
            copies: dict[str, Tenant] = {}      # one detached copy per tenant, not per number
            table = {n: copies.setdefault(t.id, detached_copy(t))
                     for n, t in numbers_table(session).items()}
            kept = self._kept = (stamp, table)
        return kept[1].get(number)


def tenant_by_slug(session: Session, slug: str) -> Tenant | None:
    return session.scalars(sa.select(Tenant).where(Tenant.slug == slug)).first()
