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

Answers: 2xx/3xx is delivered; a 5xx, 408, 429 or a connection error is retried
with exponential backoff and full jitter (:func:`shared.bus.backoff`, 30 s doubling,
capped at an hour) until :data:`MAX_ATTEMPTS`, then given up with a WARNING and
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
import math
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.models import Notification, StatusCallback
from shared.bus import backoff
from shared.crypto import SecretBox
from shared.db import Database, insert_for, utcnow
from shared.events import Event
from shared.http import iso
from shared.metrics import METRICS
from shared.tenancy import Tenant

log = logging.getLogger(__name__)
FINAL = {"delivered", "permanent-failure", "temporary-failure", "technical-failure"}
KIND = "status_callback"          # the metric's ``kind`` label
MAX_ATTEMPTS = 8                  # about an hour and a half of backoff in all, at most
BACKOFF_BASE = 30.0               # seconds before the second attempt, doubling
BACKOFF_CAP = 3600.0
RETRYABLE = {408, 429}            # and every 5xx
KEEP_DONE = dt.timedelta(days=3)  # delivered or given-up rows are then forgotten
_IDS = uuid.UUID("5d7c7c1e-6a8e-4c39-9d55-3f1b1b0c0a11")

Clock = Callable[[], dt.datetime]


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
    now = now or utcnow()
    rows: dict[str, dict] = {}
    for event in events:
        status = event.data.get("status")
        if status not in FINAL or str(event.tenant_id) not in wanted:
            continue
        nid = str(event.data["notification_id"])
        key = callback_id(nid, status)
        rows[key] = {"id": key, "tenant_id": str(event.tenant_id), "notification_id": nid,
                     "status": status, "created_at": now, "attempts": 0,
                     "next_attempt_at": now}
    if rows:
        # executemany form, as shared.inbox.claim_many: one cached statement for any batch
        session.execute(insert_for(session, StatusCallback.__table__).on_conflict_do_nothing(),
                        list(rows.values()))


@dataclass(frozen=True)
class _Job:
    """A claimed callback, ready to POST (held in memory only, never stored)."""

    id: str
    notification_id: str
    attempts: int          # including this one
    url: str
    token: str
    body: dict


@dataclass(frozen=True)
class _Answer:
    outcome: str           # "delivered" | "retry" | "refused"
    error: str | None = None


def _default_delay(attempt: int) -> dt.timedelta:
    return dt.timedelta(seconds=backoff(attempt, base=BACKOFF_BASE, cap=BACKOFF_CAP))


class Sender:
    """Sends recorded callbacks after commit; ``run_forever`` is a notify worker loop.

    ``clock`` and ``delay`` (attempt number → wait) are injectable, so a test moves
    time on instead of sleeping.  ``workers`` POSTs run at once, so one slow tenant
    holds one thread for its timeout, never a lock or a database connection.
    """

    def __init__(self, db: Database, box: SecretBox, http: requests.Session | None = None, *,
                 clock: Clock = utcnow, delay: Callable[[int], dt.timedelta] = _default_delay,
                 timeout: float = 5.0, batch: int = 50, workers: int = 8,
                 max_attempts: int = MAX_ATTEMPTS, interval: float = 1.0):
        self.db = db
        self.box = box
        self.http = http or requests.Session()
        self.clock = clock
        self.delay = delay
        self.timeout = timeout
        self.batch = batch
        self.workers = max(1, workers)
        self.max_attempts = max_attempts
        self.interval = interval
        # a claimed row is left alone this long: every POST of its batch has had its timeout
        self.lease = dt.timedelta(seconds=timeout * math.ceil(batch / self.workers) + 60)
        self.nudge = threading.Event()

    # -- the loop ----------------------------------------------------------------
    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.nudge.clear()
            try:
                sent = self.run_once()
            except Exception:  # noqa: BLE001 - the database may be away; try again soon
                log.exception("delivery-status callbacks: a run failed; retrying")
                sent = 0
            if sent < self.batch:
                self.nudge.wait(self.interval)

    def run_once(self) -> int:
        """Claim what is due, POST it (outside any transaction), mark each answer;
        answers how many rows were claimed."""
        jobs, claimed = self._claim(self.clock())
        if len(jobs) <= 1 or self.workers == 1:
            for job in jobs:
                self._mark_safely(job, self._post(job))
            return claimed
        with ThreadPoolExecutor(min(self.workers, len(jobs)),
                                thread_name_prefix="status-callback") as pool:
            futures = {pool.submit(self._post, job): job for job in jobs}
            for done in as_completed(futures):
                self._mark_safely(futures[done], done.result())
        return claimed

    # -- the steps ---------------------------------------------------------------
    def _claim(self, now: dt.datetime) -> tuple[list[_Job], int]:
        due = (sa.select(StatusCallback)
               .where(StatusCallback.delivered_at.is_(None), StatusCallback.given_up_at.is_(None),
                      StatusCallback.next_attempt_at <= now)
               .order_by(StatusCallback.next_attempt_at).limit(self.batch))
        if self.db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        jobs: list[_Job] = []
        with self.db.transaction() as session:
            rows = session.scalars(due).all()
            if not rows:
                return [], 0
            tenants = {t.id: t for t in session.scalars(sa.select(Tenant).where(
                Tenant.id.in_({r.tenant_id for r in rows})))}
            notes = {n.id: n for n in session.scalars(sa.select(Notification).where(
                Notification.id.in_({r.notification_id for r in rows})))}
            tokens: dict[str, str] = {}
            for row in rows:
                tenant = tenants.get(row.tenant_id)
                url = tenant.setting("delivery_status_url") if tenant else None
                note = notes.get(row.notification_id)
                if not url or note is None:
                    # the tenant removed its URL, or the notification is past retention
                    row.given_up_at = now
                    row.last_error = "no delivery-status URL" if not url else "notification gone"
                    METRICS.outbound_deliveries.labels(kind=KIND, outcome="dropped").inc()
                    continue
                if row.tenant_id not in tokens:
                    tokens[row.tenant_id] = self._token(tenant)
                row.attempts += 1
                row.next_attempt_at = now + self.lease
                jobs.append(_Job(row.id, row.notification_id, row.attempts, url,
                                 tokens[row.tenant_id], payload(note)))
        return jobs, len(rows)

    def _token(self, tenant: Tenant) -> str:
        if not tenant.config_encrypted:
            return ""
        return self.box.decrypt_json(tenant.config_encrypted).get("delivery_status_token", "")

    def _post(self, job: _Job) -> _Answer:
        try:
            resp = self.http.post(job.url, json=job.body, timeout=self.timeout,
                                  headers={"Authorization": f"Bearer {job.token}"})
        except Exception as exc:  # noqa: BLE001 - a connection error, timeout, bad URL...
            return _Answer("retry", type(exc).__name__)
        code = resp.status_code
        if code >= 500 or code in RETRYABLE:
            return _Answer("retry", f"HTTP {code}")
        if code >= 400:
            return _Answer("refused", f"refused: HTTP {code}")
        return _Answer("delivered")

    def _mark_safely(self, job: _Job, answer: _Answer) -> None:
        try:
            self._mark(job, answer)
        except Exception:  # noqa: BLE001 - the lease runs out and the row is sent again
            log.exception("delivery-status callback for %s: could not record the answer; it "
                          "will be sent again", job.notification_id)

    def _mark(self, job: _Job, answer: _Answer) -> None:
        now = self.clock()
        values: dict = {"last_error": answer.error}
        if answer.outcome == "delivered":
            values["delivered_at"] = now
            outcome = "delivered"
        elif answer.outcome == "refused":
            values["given_up_at"] = now
            outcome = "refused"
            log.warning("tenant's delivery-status URL refused the callback for %s (%s); "
                        "not retried", job.notification_id, answer.error)
        elif job.attempts >= self.max_attempts:
            values["given_up_at"] = now
            outcome = "given_up"
            log.warning("delivery-status callback for %s given up after %d attempts (%s)",
                        job.notification_id, job.attempts, answer.error)
        else:
            values["next_attempt_at"] = now + self.delay(job.attempts)
            outcome = "retried"
            log.info("delivery-status callback for %s failed (%s); attempt %d of %d later",
                     job.notification_id, answer.error, job.attempts + 1, self.max_attempts)
        with self.db.transaction() as session:
            session.execute(sa.update(StatusCallback).where(StatusCallback.id == job.id)
                            .values(**values))
        METRICS.outbound_deliveries.labels(kind=KIND, outcome=outcome).inc()


def forget_done(db: Database, *, now: dt.datetime | None = None, keep: dt.timedelta = KEEP_DONE,
                batch: int = 1000) -> int:
    """Delete rows delivered or given up more than ``keep`` ago, ``batch`` a transaction."""
    before = (now or utcnow()) - keep
    done = sa.or_(StatusCallback.delivered_at < before, StatusCallback.given_up_at < before)
    deleted = 0
    while True:
        with db.transaction() as session:
            ids = session.scalars(sa.select(StatusCallback.id).where(done).limit(batch)).all()
            if ids:
                session.execute(sa.delete(StatusCallback).where(StatusCallback.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < batch:
            return deleted
