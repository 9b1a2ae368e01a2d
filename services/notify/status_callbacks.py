"""Delivery-status callbacks to a tenant's own system, as GOV.UK Notify sends them.

Two halves, so that no HTTP call happens inside a database transaction:

* **Record** (:func:`record`, the ``notify.callbacks`` handler): in the inbox
  transaction that handles a ``notification.delivered|failed`` event, a row in
  ``status_callbacks`` per final outcome of a tenant with a ``delivery_status_url``.
  Its id is derived from (notification, status), and the insert is ``ON CONFLICT DO
  NOTHING``: a redelivered event, or a batch the worker re-handles one event at a
  time after a failure, records nothing new.  The row holds no URL, token or body.
* **Send** (:class:`Sender`, a loop of the notify worker, woken as soon as a
  callbacks batch commits): claims due rows (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL) and moves each one's ``next_attempt_at`` on by a lease, commits, and
  only then POSTs, with the body built from the notification row (the row is the
  truth) and the bearer token from the tenant's encrypted config.  Each answer is
  marked on its own row, so one tenant's failure never sends another callback again.

The claim, POST, mark and backoff are :mod:`shared.deliveries`'s.  Answers: 2xx/3xx
is delivered; a 5xx, 408, 429 or a connection error is retried with exponential
backoff and full jitter (30 s doubling, capped at an hour) for 8 attempts, then
given up with a WARNING and
``hysbys_outbound_deliveries_total{kind="status_callback",outcome="given_up"}``;
any other 4xx is the tenant's configuration: logged, not retried.

At least once: a sender that dies between the POST and the mark (or whose mark
fails) leaves the row claimed until its lease is over, and it is sent again.  The
callback's body carries the notification's id and status, so a tenant can drop
the repeat.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.models import Notification, StatusCallback
from shared import deliveries
from shared.crypto import SecretBox
from shared.db import Database, utcnow
from shared.events import Event
from shared.http import iso
from shared.tenancy import Tenant

log = logging.getLogger(__name__)
FINAL = {"delivered", "permanent-failure", "temporary-failure", "technical-failure"}
KIND = "status_callback"          # the metric's ``kind`` label
_IDS = uuid.UUID("5d7c7c1e-6a8e-4c39-9d55-3f1b1b0c0a11")


def payload(n: Notification) -> dict:
    return {"id": n.id, "reference": n.reference, "to": n.recipient, "status": n.status,
            "created_at": iso(n.created_at), "completed_at": iso(n.completed_at),
            "sent_at": iso(n.sent_at), "notification_type": n.channel,
            "template_id": n.template_id, "template_version": n.template_version}


def callback_id(notification_id: str, status: str) -> str:
    """The row's id: one callback per notification and status, however often the event comes."""
    return str(uuid.uuid5(_IDS, f"{notification_id}/{status}"))


def tenants_with_callbacks(events: list[Event], session: Session) -> set[str]:
    """Which of the batch's tenants have a delivery-status URL (one query for the batch)."""
    ids = {str(e.tenant_id) for e in events if e.data.get("status") in FINAL}
    if not ids:
        return set()
    return {t.id for t in session.scalars(sa.select(Tenant).where(Tenant.id.in_(ids)))
            if t.setting("delivery_status_url")}


def record(events: list[Event], session: Session, *, now: dt.datetime | None = None) -> None:
    """Record the callbacks the events owe (final outcomes of tenants with a URL), in the
    caller's transaction: one multi-row ``INSERT ... ON CONFLICT DO NOTHING``."""
    wanted = tenants_with_callbacks(events, session)
    rows: dict[str, dict] = {}
    for event in events:
        status = event.data.get("status")
        if status not in FINAL or str(event.tenant_id) not in wanted:
            continue
        nid = str(event.data["notification_id"])
        key = callback_id(nid, status)
        rows[key] = {"id": key, "tenant_id": str(event.tenant_id), "notification_id": nid,
                     "status": status}
    deliveries.record(session, StatusCallback, list(rows.values()), now=now or utcnow())


class Sender(deliveries.Sender):
    """Sends the recorded callbacks after commit (``run_forever`` is a notify worker loop);
    the options are :class:`shared.deliveries.Sender`'s (clock, delay, timeout, ...)."""

    def __init__(self, db: Database, box: SecretBox, http: requests.Session | None = None,
                 **options):
        super().__init__(db, StatusCallback, self._requests, kind=KIND, http=http, **options)
        self.box = box

    def _requests(self, session: Session, rows: list[StatusCallback], now: dt.datetime
                  ) -> dict[str, deliveries.Outgoing | deliveries.Drop]:
        """Each claimed row's POST: the body from the notification as it is now, the URL
        and bearer token from the tenant's settings."""
        tenants = {t.id: t for t in session.scalars(sa.select(Tenant).where(
            Tenant.id.in_({r.tenant_id for r in rows})))}
        notes = {n.id: n for n in session.scalars(sa.select(Notification).where(
            Notification.id.in_({r.notification_id for r in rows})))}
        tokens: dict[str, str] = {}
        prepared: dict[str, deliveries.Outgoing | deliveries.Drop] = {}
        for row in rows:
            tenant = tenants.get(row.tenant_id)
            url = tenant.setting("delivery_status_url") if tenant else None
            note = notes.get(row.notification_id)
            if not url or note is None:
                # the tenant removed its URL, or the notification is past retention
                prepared[row.id] = deliveries.Drop("no delivery-status URL" if not url
                                                   else "notification gone")
                continue
            if row.tenant_id not in tokens:
                tokens[row.tenant_id] = self._token(tenant)
            prepared[row.id] = deliveries.Outgoing(
                url, payload(note), {"Authorization": f"Bearer {tokens[row.tenant_id]}"},
                label=row.notification_id)
        return prepared

    def _token(self, tenant: Tenant) -> str:
        if not tenant.config_encrypted:
            return ""
        return self.box.decrypt_json(tenant.config_encrypted).get("delivery_status_token", "")


def forget_done(db: Database, *, now: dt.datetime | None = None) -> int:
    """Delete callbacks delivered or given up more than three days ago."""
    return deliveries.forget_done(db, StatusCallback, now=now)
