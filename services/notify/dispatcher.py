"""The dispatcher: hands created notifications to providers, fairly and exactly once.

1. **Claim** (one transaction): ``deferred`` rows whose quiet hours are over become
   ``created``; then due ``created`` rows, an equal share per tenant,
   urgent first; a row whose providers all have open circuits, or whose sender's
   throttle is empty, stays ``created``.  Claimed rows become ``sending`` with
   ``attempts`` + 1, and the claim commits before any provider is called.
2. **Hand off**, a small chunk at a time: one UPDATE stamps ``handoff_at`` on the
   chunk (only rows still ``sending`` with the attempt number this dispatcher
   claimed), then each stamped row goes to its providers in order, failing over
   on a retryable error.  A row that is not stamped is not sent.
3. **Record** the chunk's outcomes (one transaction, events through
   :func:`~services.notify.sending.set_status`).  A retryable failure puts the row
   back to ``created`` with ``not_before`` = now + backoff: the database is the
   delay queue, and no worker sleeps.  After the retry budget it ends
   ``technical-failure`` with the reason.  If the database is unreachable when the
   outcomes are recorded (PostgreSQL restarting), the record is retried with
   backoff for up to half of ``stale_after``, the outcomes held in memory.

**Lanes.**  Hand-offs to a remote provider run in that provider's *lane* (one
thread per provider name, started when it has work), so a slow or hanging
provider holds up only the rows that go to it first.  ``claim`` leaves a row
``created`` (no attempt spent) while its first provider's lane is busy; the loop
gives each lane its chunks and claims again without waiting for them.
In-process providers (the simulator) cannot hang: their rows are handed off in
the dispatcher's own thread, one chunk per batch, as before.

The sweeper repairs what a crash leaves: a ``sending`` row never stamped goes
back to ``created``; a stamped row without an outcome ends ``technical-failure``
("outcome unknown") and is never sent again.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify import quiet_hours
from services.notify.models import Notification, Suppression
from services.notify.providers.base import OutgoingMessage, Provider, ProviderError, SendResult
from services.notify.providers.health import Breakers, HealthBoard
from services.notify.providers.throttle import DatabaseThrottle, RedisThrottle, Throttle
from services.notify.sending import find_suppression, new_suppression, set_status
from shared import events, outbox, pii, tracing
from shared.bus import backoff
from shared.db import Database, utcnow
from shared.tenancy import Tenant

log = logging.getLogger(__name__)

ProviderChooser = Callable[[Notification, Tenant], list[Provider]]
KNOWN_AT_ONCE = ("delivered", "temporary-failure", "permanent-failure")


# The tenants with rows waiting, by a skip scan of the partial index
# ix_notifications_queue: one index probe per tenant, where DISTINCT would read every
# waiting row (100,000 on bin night) for every batch.  It includes a tenant whose rows
# all wait for a later ``not_before`` (a retry): its share of the batch then stays empty.
TENANTS_WITH_WORK = sa.text("""
    WITH RECURSIVE t(tenant_id) AS (
        SELECT min(tenant_id) FROM notifications WHERE status = 'created'
        UNION ALL
        SELECT (SELECT min(n.tenant_id) FROM notifications n
                WHERE n.status = 'created' AND n.tenant_id > t.tenant_id)
        FROM t WHERE t.tenant_id IS NOT NULL
    )
    SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL
""")


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per notification, and the exponential backoff with full jitter between them."""

    max_attempts: int = 6
    base_delay: float = 5.0
    max_delay: float = 900.0

    def delay(self, attempt: int) -> float:
        return backoff(attempt, base=self.base_delay, cap=self.max_delay)


@dataclass
class Safeguards:
    """Retry budget, circuit breakers, sender throttle and health figures, injectable for tests."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breakers: Breakers = field(default_factory=Breakers)
    throttle: Throttle | RedisThrottle | DatabaseThrottle = field(default_factory=Throttle)
    health: HealthBoard = field(default_factory=HealthBoard)
    stale_after: dt.timedelta = dt.timedelta(minutes=10)
    sweep_every: float = 30.0
    record_retry: float = 0.5       # first wait before recording outcomes again (doubles, ≤ 10 s)
    lanes_drain: float = 4.0        # on shutdown, how long to wait for in-flight lanes


@dataclass
class Claim:
    row: Notification
    tenant: Tenant
    plan: list[Provider]


@dataclass
class Outcome:
    claim: Claim
    status: str                       # a status, or "retry"
    provider: Provider | None = None
    result: SendResult | None = None
    reason: str | None = None
    suppress: bool = False
    called: bool = True               # False: every circuit refused, no provider was called
    traceparent: str | None = None    # the provider call's span: the outcome's events follow it


class Dispatcher:
    """Claims created notifications fairly across tenants and hands them to providers."""

    def __init__(self, db: Database, choose: ProviderChooser, *, batch: int = 200, chunk: int = 10,
                 interval: float = 0.1, on_outbox: Callable[[], None] | None = None,
                 safeguards: Safeguards | None = None):
        self.db = db
        self.choose = choose
        self.batch = batch
        self.chunk = chunk
        self.interval = interval
        self.nudge = threading.Event()
        self.on_outbox = on_outbox or (lambda: None)
        self.guard = safeguards or Safeguards()
        self._lanes: dict[str, Lane] = {}
        self._lanes_lock = threading.Lock()

    # -- 1. claim ---------------------------------------------------------------
    def claim(self) -> list[Claim]:
        """Mark up to ``batch`` due notifications ``sending`` and return them with their plans.

        Fairness: each tenant with work gets an equal share of the batch, its
        urgent notifications first, so one council's 100,000 bin reminders do
        not hold up another board's appointment reminder due now.
        """
        now = utcnow()
        due = sa.and_(Notification.status == "created",
                      sa.or_(Notification.not_before.is_(None), Notification.not_before <= now))
        with self.db.transaction() as session:
            quiet_hours.release_due(session, now)
            tenant_ids = session.scalars(TENANTS_WITH_WORK).all()
            if not tenant_ids:
                return []
            share = max(1, self.batch // len(tenant_ids))
            claims: list[Claim] = []
            circuits: dict[str, bool] = {}    # each provider's circuit asked once per claim
            tenants = {t.id: t for t in session.scalars(
                sa.select(Tenant).where(Tenant.id.in_(tenant_ids)))}
            # one flush of every claimed row at the end, not one per tenant (each query
            # below would otherwise flush the rows the tenant before it claimed)
            with session.no_autoflush:
                for tenant_id in tenant_ids:
                    q = (sa.select(Notification).where(due, Notification.tenant_id == tenant_id)
                         .order_by(Notification.urgent.desc(), Notification.created_at)
                         .limit(share))
                    if self.db.dialect == "postgresql":
                        q = q.with_for_update(skip_locked=True)
                    claims.extend(self._admit(session, session.scalars(q).all(),
                                              tenants.get(tenant_id), now, circuits))
            session.flush()
        return claims

    def _admit(self, session: Session, rows: list[Notification], tenant: Tenant | None, now,
               circuits: dict[str, bool]) -> list[Claim]:
        admitted = []
        for n in rows:
            plan = self.choose(n, tenant) if tenant is not None else []
            usable = [p for p in plan
                      if not _remote(p) or self._available(session, p.name, circuits)]
            if plan and not usable:
                continue            # every provider's circuit is open: wait as created
            if usable and _remote(usable[0]) and self._lane_busy(usable[0].name):
                continue            # its provider's lane is still handing off: wait as created
            if usable and not self._within_throttle(session, n, tenant, usable[0]):
                break               # the sender is at capacity: this tenant's rest waits its turn
            n.status, n.attempts, n.updated_at, n.handoff_at = "sending", n.attempts + 1, now, None
            admitted.append(Claim(n, tenant, usable))
        return admitted

    def _available(self, session: Session, name: str, circuits: dict[str, bool]) -> bool:
        if name not in circuits:
            circuits[name] = self.guard.breakers[name].available(session)
        return circuits[name]

    def _within_throttle(self, session: Session, n: Notification, tenant: Tenant,
                         first: Provider) -> bool:
        if n.channel != "sms" or not _remote(first):
            return True
        capacity = tenant.setting("capacity") or {}
        rate = float(capacity.get("segments_per_second") or 10) * int(capacity.get("senders") or 1)
        key = (tenant.id, first.name, getattr(first, "sender", first.name))
        return self.guard.throttle.try_take(key, rate, n.fragment_count or 1, session=session)

    # -- 2. hand off ------------------------------------------------------------
    def run_once(self, *, wait: bool = True) -> int:
        """Claim one batch and hand it off; returns how many were claimed.

        Rows for a remote provider go to that provider's lane; rows for an
        in-process provider are handed off here.  ``wait=False`` (the loop) returns
        without waiting for the lanes; ``wait=True`` (tests, one-shot callers) waits
        for them and raises what a lane raised.
        """
        claims = self.claim()
        if not claims:
            return 0
        suppressed = self._suppressed([c.row for c in claims])
        here: list[Claim] = []
        lanes: dict[str, list[Claim]] = {}
        for c in claims:
            first = c.plan[0] if c.plan else None
            if first is not None and _remote(first):
                lanes.setdefault(first.name, []).append(c)
            else:
                here.append(c)
        futures = [self._lane(name).submit(self._hand_off_chunks, lane_claims, suppressed)
                   for name, lane_claims in lanes.items()]
        try:
            # An in-process provider (the simulator) dies with the process, so its claims
            # go in one chunk: two transactions for the batch instead of two per ten.
            if here:
                self.hand_off(here, suppressed)
        finally:
            if wait and futures:
                wait_for(futures)
        if wait:
            for f in futures:
                f.result()
        return len(claims)

    def _hand_off_chunks(self, claims: list[Claim], suppressed: frozenset) -> None:
        """A lane's work: small chunks bound what a crash leaves "outcome unknown"; urgent first."""
        claims = sorted(claims, key=lambda c: not c.row.urgent)
        for start in range(0, len(claims), self.chunk):
            self.hand_off(claims[start:start + self.chunk], suppressed)

    def _lane(self, name: str) -> Lane:
        with self._lanes_lock:
            lane = self._lanes.get(name)
            if lane is None:
                lane = self._lanes[name] = Lane(name, on_idle=self.nudge.set)
            return lane

    def _lane_busy(self, name: str) -> bool:
        lane = self._lanes.get(name)
        return lane is not None and lane.busy

    def busy_lanes(self) -> list[str]:
        return [name for name, lane in list(self._lanes.items()) if lane.busy]

    def close(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout``, default ``lanes_drain``) for in-flight lanes; True if all ended.

        A lane still busy afterwards holds stamped rows: if the process then ends,
        the sweeper fails them "outcome unknown" (never sent twice).
        """
        deadline = time.monotonic() + (self.guard.lanes_drain if timeout is None else timeout)
        for lane in list(self._lanes.values()):
            lane.join(max(0.0, deadline - time.monotonic()))
        busy = self.busy_lanes()
        if busy:
            log.warning("dispatcher stopping with provider lanes still handing off: %s",
                        ", ".join(sorted(busy)))
        return not busy

    def hand_off(self, chunk: list[Claim], suppressed: frozenset = frozenset()) -> None:
        """Stamp ``handoff_at`` on the chunk, call providers for the stamped rows, record."""
        outcomes = [Outcome(c, "suppressed", reason="recipient opted out") for c in chunk
                    if (c.row.tenant_id, c.row.channel, c.row.recipient) in suppressed]
        to_send = [c for c in chunk if (c.row.tenant_id, c.row.channel, c.row.recipient) not in suppressed]
        stamped = self._stamp(to_send)
        outcomes += [self._send(c) for c in to_send if c.row.id in stamped]
        self._record_held(outcomes)

    def _stamp(self, claims: list[Claim]) -> set[str]:
        if not claims:
            return set()
        mine = [(c.row.id, c.row.attempts) for c in claims]
        with self.db.transaction() as session:
            stamped = session.scalars(
                sa.update(Notification)
                .where(sa.tuple_(Notification.id, Notification.attempts).in_(mine),
                       Notification.status == "sending", Notification.handoff_at.is_(None))
                .values(handoff_at=utcnow()).returning(Notification.id)).all()
        return set(stamped)

    def _send(self, claim: Claim) -> Outcome:
        n = claim.row
        msg = OutgoingMessage(notification_id=n.id, channel=n.channel, to=n.recipient or "",
                              body=n.body or "", subject=n.subject, sender=n.sender,
                              reply_to=n.reply_to, unsubscribe_url=n.unsubscribe_url)
        if not claim.plan:
            return Outcome(claim, "technical-failure", reason="no provider configured")
        errors = []
        called = False
        for provider in claim.plan:
            breaker = self.guard.breakers[provider.name] if _remote(provider) else None
            if breaker is not None and not breaker.allow():
                errors.append(f"{provider.name}: circuit open")
                continue
            started = time.perf_counter()
            called = True
            traceparent = n.traceparent
            try:
                with _call_span(n, provider):
                    traceparent = tracing.current_traceparent() or traceparent
                    result = provider.send(msg)
            except ProviderError as exc:
                self._observe(provider, breaker, started, ok=False, outage=exc.kind == "outage")
                if not exc.retryable:
                    return Outcome(claim, exc.status, provider, reason=str(exc), suppress=exc.suppress,
                                   traceparent=traceparent)
                errors.append(f"{provider.name}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - an adapter bug must not strand the chunk
                log.exception("provider %s failed unexpectedly", provider.name,
                              extra={"notification_id": n.id})
                self._observe(provider, breaker, started, ok=False, outage=True)
                errors.append(f"{provider.name}: {type(exc).__name__}")
                continue
            self._observe(provider, breaker, started, ok=True, outage=False)
            return Outcome(claim, result.status, provider, result, result.reason,
                           traceparent=traceparent)
        return Outcome(claim, "retry", reason="; ".join(errors), called=called)

    def _observe(self, provider: Provider, breaker, started: float, *, ok: bool, outage: bool) -> None:
        if _remote(provider):
            self.guard.health.observe(provider.name, time.perf_counter() - started, ok)
        if breaker is not None:
            breaker.record(outage)

    # -- 3. record --------------------------------------------------------------
    def _record_held(self, outcomes: list[Outcome]) -> None:
        """Record, retrying while the database is unreachable (for up to half of ``stale_after``).

        The providers have answered: losing these outcomes would leave the rows to the
        sweeper as "outcome unknown".  A failed record transaction rolled back, and
        ``_record`` skips rows no longer ``sending`` with our attempt, so trying again
        is safe even when a commit landed but its answer was lost.
        """
        deadline = time.monotonic() + self.guard.stale_after.total_seconds() / 2
        wait = self.guard.record_retry
        tries = 1
        while True:
            try:
                self._record(outcomes)
                if tries > 1:
                    log.warning("recorded %d outcomes after %d tries", len(outcomes), tries)
                return
            except sa.exc.DBAPIError as exc:
                if not _unreachable(exc) or time.monotonic() + wait > deadline:
                    raise
                log.warning("database unreachable while recording %d outcomes (%s); trying "
                            "again in %.1f s", len(outcomes), type(exc.orig).__name__, wait)
            time.sleep(wait)
            wait, tries = min(wait * 2, 10.0), tries + 1

    def _record(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        with self.db.transaction() as session:
            ids = [o.claim.row.id for o in outcomes]
            rows = {n.id: n for n in session.scalars(sa.select(Notification)
                                                     .where(Notification.id.in_(ids)))}
            for o in outcomes:
                row = rows.get(o.claim.row.id)
                if row is None or row.status != "sending" or row.attempts != o.claim.row.attempts:
                    continue    # swept, or already moved on by a receipt: not ours any more
                with tracing.attached(o.traceparent or row.traceparent):
                    self._apply(session, row, o)
        self.on_outbox()

    def _apply(self, session: Session, row: Notification, o: Outcome) -> None:
        name = o.provider.name if o.provider else None
        if o.status == "retry":
            self._retry_or_give_up(session, row, o.reason or "no provider answered", o.called)
            return
        if o.result is not None:
            row.provider_reference = o.result.reference
            sender = row.sender or getattr(o.provider, "sender", None)
            row.sender = sender if sender and len(sender) <= 32 else None
        if o.status in KNOWN_AT_ONCE and o.result is not None:
            set_status(session, row, "sent", provider=name)   # the hand-off, then the outcome
        set_status(session, row, o.status, provider=name, reason=o.reason)
        if o.suppress:
            suppress(session, row, source=name or "provider")

    def _retry_or_give_up(self, session: Session, row: Notification, reason: str,
                          called: bool) -> None:
        policy = self.guard.retry
        if not called:
            row.attempts -= 1   # no provider was reached: the attempt does not count
        elif row.attempts >= policy.max_attempts:
            set_status(session, row, "technical-failure",
                       reason=f"gave up after {row.attempts} attempts: {reason}")
            return
        now = utcnow()
        row.status, row.handoff_at, row.updated_at = "created", None, now
        wait = policy.delay(row.attempts) if called else policy.base_delay
        row.not_before = now + dt.timedelta(seconds=wait)
        row.status_reason = f"retrying: {reason}"[:500]

    def _suppressed(self, rows: list[Notification]) -> frozenset:
        with self.db.read() as session:
            by_hash = {pii.lookup_hash(session, n.recipient): n.recipient for n in rows
                       if n.recipient}
            found = session.execute(sa.select(Suppression.tenant_id, Suppression.channel,
                                              Suppression.recipient_hash)
                                    .where(Suppression.recipient_hash.in_(by_hash))).all()
        return frozenset((t, c, by_hash[h]) for t, c, h in found)

    # -- the sweeper ------------------------------------------------------------
    def sweep(self, now: dt.datetime | None = None, limit: int = 500) -> tuple[int, int]:
        """Repair what a crashed dispatcher left ``sending``; returns (re-queued, failed)."""
        now = now or utcnow()
        cutoff = now - self.guard.stale_after
        with self.db.transaction() as session:
            requeued = session.execute(
                sa.update(Notification)
                .where(Notification.status == "sending", Notification.handoff_at.is_(None),
                       Notification.updated_at < cutoff)
                .values(status="created", updated_at=now)).rowcount or 0
            q = (sa.select(Notification).where(Notification.status == "sending",
                                               Notification.handoff_at < cutoff).limit(limit))
            if self.db.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            unknown = session.scalars(q).all()
            for row in unknown:
                set_status(session, row, "technical-failure",
                           reason=f"outcome unknown: the hand-off began at {row.handoff_at:%H:%M:%S} "
                                  "UTC and no answer was recorded; not sent again")
        if requeued or unknown:
            log.warning("sweeper: %d claimed notifications re-queued, %d with an unknown outcome "
                        "failed", requeued, len(unknown))
            self.on_outbox()
        return requeued, len(unknown)

    def run_forever(self, stop: threading.Event) -> None:
        last_sweep = float("-inf")
        while not stop.is_set():
            try:
                if time.monotonic() - last_sweep >= self.guard.sweep_every:
                    last_sweep = time.monotonic()
                    self.sweep()
                self.guard.health.flush_if_due(self.db, self.guard.breakers)
                if self.run_once(wait=False) == 0:
                    self.nudge.wait(self.interval)   # a lane that finishes nudges too
                    self.nudge.clear()
            except Exception:
                log.exception("dispatcher failed; retrying")
                stop.wait(1.0)
        self.close()


def suppress(session: Session, row: Notification, *, source: str) -> None:
    """Add the recipient to the tenant's suppression list and announce the opt-out."""
    if find_suppression(session, row.tenant_id, row.channel, row.recipient) is None:
        session.add(new_suppression(session, row.tenant_id, row.channel, row.recipient,
                                    source=source, created_at=utcnow()))
    outbox.add(session, events.make("subscriber.opted_out", row.tenant_id, None,
                                    recipient=row.recipient, channel=row.channel, source=source))


def _call_span(n: Notification, provider: Provider):
    """The provider call's client span, child of the request or event that made the row."""
    return tracing.span(f"send {n.channel} via {provider.name}", parent=n.traceparent,
                        kind=tracing.SpanKind.CLIENT,
                        attributes={"hysbys.notification_id": n.id, "hysbys.tenant_id": n.tenant_id,
                                    "hysbys.provider": provider.name, "hysbys.channel": n.channel,
                                    "hysbys.attempt": n.attempts})


def _remote(provider: Provider) -> bool:
    return getattr(provider, "remote", True)


def _unreachable(exc: sa.exc.DBAPIError) -> bool:
    """The database is down or restarting (worth trying again), not a bug in the statement."""
    return (isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
            or bool(exc.connection_invalidated))


class Lane:
    """One provider's hand-offs, one at a time, in a thread of their own.

    The thread starts when work arrives and ends when the lane is empty, so an idle
    provider costs nothing; ``on_idle`` wakes the dispatcher to claim that
    provider's rows again.
    """

    def __init__(self, name: str, on_idle: Callable[[], None] = lambda: None):
        self.name = name
        self.on_idle = on_idle
        self._jobs: deque[tuple[Callable[[], None], Future]] = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        with self._lock:
            self._jobs.append((lambda: fn(*args), future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"notify-lane-{self.name}",
                                                daemon=True)
                self._thread.start()
        return future

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._thread = None
                    break
                job, future = self._jobs.popleft()
            future.set_running_or_notify_cancel()
            try:
                future.set_result(job())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the lane
                log.exception("provider lane %s: a hand-off failed; its rows are left to the "
                              "sweeper", self.name)
                future.set_exception(exc)
        self.on_idle()
