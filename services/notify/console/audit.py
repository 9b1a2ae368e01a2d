"""The audit log: every change made in the console or through notify's API.

Who (a staff member, an API key, the platform operator), what (an action and its
target), when, and the state before and after — never a secret or a message body in
clear: :func:`redact` replaces secrets and recipients with ``"[redacted]"`` and the
text of bodies and subjects with its length and a short fingerprint, so a reader
sees *that* it changed without reading it.

* The console writes its entries with :func:`record`, in the same transaction as the
  change (the change and its entry commit together or not at all).
* Notify's API gets one generic hook (:func:`install_api_hook`): after a changing
  request (POST, PUT, PATCH, DELETE) answered 2xx on the v2, native or admin API, an
  entry naming the endpoint, the caller and the redacted request.  Before-state for an
  endpoint comes from :data:`BEFORE`, a table of small loaders run before the view; a
  send is not a change (the notifications table is its record), so sends are left out.
* The scheduler's and inbound's changes reach it as ``audit.recorded`` events (see
  docs/decisions.md, "Audit log across services"): :func:`apply_audit_event` stores
  one row per event id, so a redelivered event is stored once.

``GET /api/audit`` (``audit_api.py``) and the console's Audit page read it, newest first.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask, g, request
from sqlalchemy.orm import Session

from services.notify.console.models import AuditEntry
from shared.audit import fingerprint, redact  # noqa: F401 - re-exported
from shared.db import utcnow

log = logging.getLogger(__name__)

CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
API_BLUEPRINTS = ("native", "v2", "admin")
NOT_CHANGES = {"v2.send_sms", "v2.send_email", "v2.send_letter", "native.bulk_send",
               "native.preview", "v2.preview"}


def current_actor() -> tuple[str, str | None, str | None, str]:
    """(actor type, id, label, via) for the request being served."""
    staff = g.get("staff")
    if staff is not None:
        return "staff", staff.id, staff.email, "console"
    caller = g.get("caller")
    if caller is not None:
        return "api_key", caller.key_id, g.get("caller_key_name") or caller.key_id, "api"
    if request and request.blueprint == "admin":
        return "operator", None, "platform admin token", "admin"
    return "system", None, None, "system"


def record(session: Session, *, tenant_id: str | None, action: str,
           target_type: str | None = None, target_id: str | None = None,
           before: dict | None = None, after: dict | None = None,
           actor: tuple[str, str | None, str | None, str] | None = None) -> AuditEntry:
    """Add one entry in the caller's transaction; ``before``/``after`` are redacted here."""
    actor_type, actor_id, label, via = actor or current_actor()
    entry = AuditEntry(tenant_id=tenant_id, at=utcnow(), service="notify", via=via,
                       actor_type=actor_type, actor_id=actor_id, actor_label=label,
                       action=action, target_type=target_type,
                       target_id=str(target_id) if target_id is not None else None,
                       before=redact(before) if before is not None else None,
                       after=redact(after) if after is not None else None,
                       correlation_id=g.get("correlation_id") if request else None)
    session.add(entry)
    return entry


def entry_json(e: AuditEntry) -> dict:
    from shared.http import iso

    return {"id": e.id, "at": iso(e.at), "service": e.service, "via": e.via,
            "actor": {"type": e.actor_type, "id": e.actor_id, "label": e.actor_label},
            "action": e.action, "target": {"type": e.target_type, "id": e.target_id},
            "before": e.before, "after": e.after, "correlation_id": e.correlation_id}


def page(session: Session, tenant_id: str, *, older_than: int | None = None,
         size: int = 50) -> list[AuditEntry]:
    q = sa.select(AuditEntry).where(AuditEntry.tenant_id == tenant_id)
    if older_than is not None:
        q = q.where(AuditEntry.id < older_than)
    return list(session.scalars(q.order_by(AuditEntry.id.desc()).limit(size)))


# -- notify's API: one generic hook ----------------------------------------------------

def _template_before(session: Session, view_args: dict) -> tuple[str, dict] | None:
    from services.notify.api_native import template_json
    from services.notify.models import Template

    t = session.get(Template, str(view_args.get("template_id")))
    return None if t is None else (t.tenant_id, template_json(t))


def _tenant_before(session: Session, view_args: dict) -> tuple[str, dict] | None:
    from shared.tenancy import Tenant

    t = session.get(Tenant, str(view_args.get("tenant_id")))
    return None if t is None else (t.id, {"name": t.name, "default_language": t.default_language,
                                          "config": t.config, "active": t.active})


# endpoint -> loader(session, view args) of (the row's tenant, its state before the change);
# read before the view runs (and before the caller is authenticated), used only when the
# row's tenant is the caller's
BEFORE: dict[str, Callable[[Session, dict], tuple[str, dict] | None]] = {
    "native.update": _template_before,
    "admin.patch": _tenant_before,
}


def _tenant_of_request(body: dict | None) -> str | None:
    caller = g.get("caller")
    if caller is not None:
        return caller.tenant_id
    view_args = request.view_args or {}
    return view_args.get("tenant_id") or (body or {}).get("id")


def install_api_hook(app: Flask, db) -> None:
    """Record every successful change through notify's API (see the module's docstring)."""

    def audited() -> bool:
        return (request.method in CHANGING and request.blueprint in API_BLUEPRINTS
                and request.endpoint not in NOT_CHANGES)

    @app.before_request
    def _audit_before():
        if not audited() or request.endpoint not in BEFORE:
            return
        try:
            with db.read() as session:
                g.audit_before = BEFORE[request.endpoint](session, dict(request.view_args or {}))
        except Exception:  # noqa: BLE001 - an audit read never fails the request
            log.warning("audit: could not read the state before %s", request.endpoint,
                        exc_info=True)

    @app.after_request
    def _audit_after(response):
        if not audited() or not 200 <= response.status_code < 300:
            return response
        try:
            body = response.get_json(silent=True) if response.is_json else None
            body = body if isinstance(body, dict) else None
            tenant_id = _tenant_of_request(body)
            view_args = dict(request.view_args or {})
            target_id = next((v for k, v in view_args.items() if k.endswith("_id")
                              and k != "tenant_id"), None) or (body or {}).get("id") \
                or view_args.get("tenant_id")
            parts = [p for p in (request.url_rule.rule if request.url_rule else "").split("/")
                     if p and not p.startswith("<")]
            loaded = g.get("audit_before")
            before = loaded[1] if loaded and loaded[0] == tenant_id else None
            after = body if body is not None else (request.get_json(silent=True)
                                                    if request.is_json else None)
            with db.transaction() as session:
                record(session, tenant_id=tenant_id, action=request.endpoint,
                       target_type=parts[-1] if parts else None, target_id=target_id,
                       before=before, after=after if isinstance(after, dict) else None)
        except Exception:  # noqa: BLE001 - the change is made; its entry is logged as missing
            log.error("audit: could not record %s %s", request.method, request.path,
                      exc_info=True)
        return response


# -- other services' changes, as events -----------------------------------------------

def apply_audit_event(event, session: Session) -> None:
    """Store an ``audit.recorded`` event from the scheduler or inbound (once per event)."""
    if session.scalars(sa.select(AuditEntry.id).where(
            AuditEntry.event_id == str(event.id))).first() is not None:
        return
    d = event.data
    actor = d.get("actor") or {}
    target = d.get("target") or {}
    session.add(AuditEntry(
        tenant_id=str(event.tenant_id) if event.tenant_id else None, at=utcnow(),
        service=str(d.get("service") or "unknown")[:16], via=str(d.get("via") or "api")[:16],
        actor_type=str(actor.get("type") or "system")[:16], actor_id=actor.get("id"),
        actor_label=actor.get("label"), action=str(d.get("action") or "unknown")[:64],
        target_type=target.get("type"), target_id=target.get("id"),
        before=redact(d.get("before")) if d.get("before") is not None else None,
        after=redact(d.get("after")) if d.get("after") is not None else None,
        correlation_id=event.correlation_id, event_id=str(event.id)))
