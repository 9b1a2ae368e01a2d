"""Outbound HTTP after commit: record in the handler's transaction, send afterwards.

An event handler that must call a tenant's system does not call it: it records a
delivery row (:func:`record`, in the inbox transaction, ``ON CONFLICT DO NOTHING``
on a deterministic id, so a redelivered event records nothing new).  A
:class:`Sender` loop then

1. claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), moves each one's
   ``next_attempt_at`` on by a lease and asks the service to build each request from
   its own rows (the rows are the truth: nothing to send is stored), then commits;
2. POSTs outside any transaction, a few at a time (a slow tenant holds a thread for
   its timeout, never a lock or a database connection);
3. marks each row on its own: delivered (2xx, 3xx); for a 5xx, 408, 429 or a
   connection error, the next attempt after a backoff with full jitter
   (:func:`shared.bus.backoff`), until ``max_attempts``, then given up with a WARNING;
   any other 4xx is refused, logged and not retried.

``hysbys_outbound_deliveries_total{kind, outcome}`` counts every outcome (delivered,
retried, refused, given_up, dropped).  At least once: a sender that dies between a
POST and its mark leaves the row claimed until the lease is over, and it is sent
again; one row's failure never sends another again.

A service's table takes :class:`DeliveryColumns` and adds what names its delivery
(notify's ``status_callbacks``: the notification and the status).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import requests
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.bus import backoff
from shared.db import Database, UTCDateTime, insert_for, utcnow
from shared.metrics import METRICS

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8                  # about an hour and a half of backoff in all, at most
BACKOFF_BASE = 30.0               # seconds before the second attempt, doubling
BACKOFF_CAP = 3600.0
RETRYABLE = {408, 429}            # and every 5xx
KEEP_DONE = dt.timedelta(days=3)  # delivered or given-up rows are then forgotten
PENDING = "delivered_at IS NULL AND given_up_at IS NULL"   # the due index's condition

Clock = Callable[[], dt.datetime]


class DeliveryColumns:
    """The columns every delivery table has (a declarative mixin)."""

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    # when a sender may take it next; a claim moves it on by a lease, so a sender that
    # dies mid-POST leaves it to be sent again once the lease is over (at least once)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    given_up_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # "HTTP 503", "ConnectTimeout", "refused: HTTP 400": never the URL or the answer's body
    last_error: Mapped[str | None] = mapped_column(sa.String(200))


def record(session: Session, model, rows: Sequence[dict], *, now: dt.datetime) -> None:
    """Insert delivery rows (each with its ``id``, ``tenant_id`` and own columns) in the
    caller's transaction; a row whose id is there already is left as it is.  One cached
    executemany statement for any batch, as :func:`shared.inbox.claim_many`."""
    if not rows:
        return
    values = [{"created_at": now, "attempts": 0, "next_attempt_at": now, **row} for row in rows]
    session.execute(insert_for(session, model.__table__).on_conflict_do_nothing(), values)


@dataclass(frozen=True)
class Outgoing:
    """What to POST for a row, built by the service when the row is claimed."""

    url: str
    json: dict
    headers: dict = field(default_factory=dict)
    label: str = ""          # names the delivery in logs after its kind (an id, never
    #                          personal data): "status_callback <notification id> given up..."


@dataclass(frozen=True)
class Drop:
    """Nothing to send any more (the URL was removed, the subject is gone): given up now."""

    reason: str


# (session, claimed rows, now) -> {row id: Outgoing | Drop}, in the claim's transaction
Prepare = Callable[[Session, list, dt.datetime], dict[str, "Outgoing | Drop"]]


@dataclass(frozen=True)
class _Job:
    id: str
    attempts: int            # including this one
    request: Outgoing


@dataclass(frozen=True)
class _Answer:
    outcome: str             # "delivered" | "retry" | "refused"
    error: str | None = None


def default_delay(attempt: int) -> dt.timedelta:
    return dt.timedelta(seconds=backoff(attempt, base=BACKOFF_BASE, cap=BACKOFF_CAP))


def answer_of(resp) -> _Answer:
    code = resp.status_code
    if code >= 500 or code in RETRYABLE:
        return _Answer("retry", f"HTTP {code}")
    if code >= 400:
        return _Answer("refused", f"refused: HTTP {code}")
    return _Answer("delivered")


class Sender:
    """Sends a delivery table's due rows after commit; ``run_forever`` is a worker loop
    and ``nudge`` wakes it (set it once the rows' transaction has committed).

    ``clock`` and ``delay`` (attempt number → wait) are injectable, so a test moves
    time on instead of sleeping.
    """

    def __init__(self, db: Database, model, prepare: Prepare, *, kind: str,
                 http: requests.Session | None = None, clock: Clock = utcnow,
                 delay: Callable[[int], dt.timedelta] = default_delay, timeout: float = 5.0,
                 batch: int = 50, workers: int = 8, max_attempts: int = MAX_ATTEMPTS,
                 interval: float = 1.0):
        self.db = db
        self.model = model
        self.prepare = prepare
        self.kind = kind
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
                claimed = self.run_once()
            except Exception:  # noqa: BLE001 - the database may be away; try again soon
                log.exception("%s: a run failed; retrying", self.kind)
                claimed = 0
            if claimed < self.batch:
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
                                thread_name_prefix=f"{self.kind}-post") as pool:
            futures = {pool.submit(self._post, job): job for job in jobs}
            for done in as_completed(futures):
                self._mark_safely(futures[done], done.result())
        return claimed

    # -- the steps ---------------------------------------------------------------
    def _claim(self, now: dt.datetime) -> tuple[list[_Job], int]:
        m = self.model
        due = (sa.select(m).where(m.delivered_at.is_(None), m.given_up_at.is_(None),
                                  m.next_attempt_at <= now)
               .order_by(m.next_attempt_at).limit(self.batch))
        if self.db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        jobs: list[_Job] = []
        with self.db.transaction() as session:
            rows = session.scalars(due).all()
            if not rows:
                return [], 0
            prepared = self.prepare(session, list(rows), now)
            for row in rows:
                request = prepared.get(row.id, Drop("nothing to send"))
                if isinstance(request, Drop):
                    row.given_up_at = now
                    row.last_error = request.reason[:200]
                    METRICS.outbound_deliveries.labels(kind=self.kind, outcome="dropped").inc()
                    continue
                row.attempts += 1
                row.next_attempt_at = now + self.lease
                jobs.append(_Job(row.id, row.attempts, request))
        return jobs, len(rows)

    def _post(self, job: _Job) -> _Answer:
        req = job.request
        try:
            resp = self.http.post(req.url, json=req.json, timeout=self.timeout,
                                  headers=req.headers)
        except Exception as exc:  # noqa: BLE001 - a connection error, timeout, bad URL...
            return _Answer("retry", type(exc).__name__)
        return answer_of(resp)

    def _mark_safely(self, job: _Job, answer: _Answer) -> None:
        try:
            self._mark(job, answer)
        except Exception:  # noqa: BLE001 - the lease runs out and the row is sent again
            log.exception("%s %s: could not record the answer; it will be sent again",
                          self.kind, job.request.label or job.id)

    def _mark(self, job: _Job, answer: _Answer) -> None:
        now = self.clock()
        label = job.request.label or job.id
        values: dict = {"last_error": answer.error}
        if answer.outcome == "delivered":
            values["delivered_at"] = now
            outcome = "delivered"
        elif answer.outcome == "refused":
            values["given_up_at"] = now
            outcome = "refused"
            log.warning("%s %s refused by the tenant's URL (%s); not retried", self.kind,
                        label, answer.error)
        elif job.attempts >= self.max_attempts:
            values["given_up_at"] = now
            outcome = "given_up"
            log.warning("%s %s given up after %d attempts (%s)", self.kind, label,
                        job.attempts, answer.error)
        else:
            values["next_attempt_at"] = now + self.delay(job.attempts)
            outcome = "retried"
            log.info("%s %s failed (%s); attempt %d of %d later", self.kind, label,
                     answer.error, job.attempts + 1, self.max_attempts)
        with self.db.transaction() as session:
            session.execute(sa.update(self.model).where(self.model.id == job.id).values(**values))
        METRICS.outbound_deliveries.labels(kind=self.kind, outcome=outcome).inc()


def forget_done(db: Database, model, *, now: dt.datetime | None = None,
                keep: dt.timedelta = KEEP_DONE, batch: int = 1000) -> int:
    """Delete rows delivered or given up more than ``keep`` ago, ``batch`` a transaction."""
    before = (now or utcnow()) - keep
    done = sa.or_(model.delivered_at < before, model.given_up_at < before)
    deleted = 0
    while True:
        with db.transaction() as session:
            ids = session.scalars(sa.select(model.id).where(done).limit(batch)).all()
            if ids:
                session.execute(sa.delete(model).where(model.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < batch:
            return deleted
