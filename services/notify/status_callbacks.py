"""Delivery-status callbacks to a tenant's own system, as GOV.UK Notify sends them.

Consumed from ``notify.callbacks``.  A 5xx, a 429 or a connection error raises,
so the bus retries through its delay queues and dead-letters after the budget;
any other 4xx is the tenant's configuration, logged and not retried.
"""
from __future__ import annotations

import logging

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.models import Notification
from shared.crypto import SecretBox
from shared.events import Event
from shared.http import iso
from shared.tenancy import Tenant

log = logging.getLogger(__name__)
FINAL = {"delivered", "permanent-failure", "temporary-failure", "technical-failure"}


class CallbackFailed(Exception):
    """The tenant's endpoint could not take the callback now; retry later."""


def payload(n: Notification) -> dict:
    return {"id": n.id, "reference": n.reference, "to": n.recipient, "status": n.status,
            "created_at": iso(n.created_at), "completed_at": iso(n.completed_at),
            "sent_at": iso(n.sent_at), "notification_type": n.channel,
            "template_id": n.template_id, "template_version": n.template_version}


def tenants_with_callbacks(events: list[Event], session: Session) -> set[str]:
    """Which of the batch's tenants have a delivery-status URL (one query for the batch)."""
    ids = {str(e.tenant_id) for e in events if e.data.get("status") in FINAL}
    if not ids:
        return set()
    return {t.id for t in session.scalars(sa.select(Tenant).where(Tenant.id.in_(ids)))
            if t.setting("delivery_status_url")}


def post_status_callback(event: Event, session: Session, *, http: requests.Session,
                         box: SecretBox, timeout: float = 5.0) -> None:
    if event.data["status"] not in FINAL:
        return
    tenant = session.get(Tenant, str(event.tenant_id))
    url = tenant.setting("delivery_status_url") if tenant else None
    if not url:
        return
    n = session.get(Notification, str(event.data["notification_id"]))
    if n is None:
        return
    token = box.decrypt_json(tenant.config_encrypted).get("delivery_status_token", "")
    try:
        resp = http.post(url, json=payload(n), timeout=timeout,
                         headers={"Authorization": f"Bearer {token}"})
    except requests.RequestException as exc:
        raise CallbackFailed(f"delivery-status callback: {type(exc).__name__}") from exc
    if resp.status_code >= 500 or resp.status_code == 429:
        raise CallbackFailed(f"delivery-status callback answered {resp.status_code}")
    if resp.status_code >= 400:
        log.warning("tenant's delivery-status URL refused a callback with %s; not retried",
                    resp.status_code)
