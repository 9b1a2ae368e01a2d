"""Recording a chunk's outcomes: one transaction, an event for every status change.

Every change goes through :func:`~services.notify.sending.set_status` with the
notification's own correlation id (the request's or event's that made it), so the
``notification.sent`` and the outcome carry it, and the log lines written meanwhile
carry it too.  A retryable failure puts the row back to ``created`` with
``not_before`` = now + backoff: the database is the delay queue, and no worker
sleeps.  After the retry budget it ends ``technical-failure`` with the reason.

*Held outcomes*: if the database is unreachable when the outcomes are recorded
(PostgreSQL restarting), the record is retried with backoff for up to half of
``stale_after``, the outcomes held in memory — the providers have answered, and
losing them would leave the rows to the sweeper as "outcome unknown".
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.dispatcher.handoff import Outcome
from services.notify.dispatcher.safeguards import RetryPolicy, Safeguards
from services.notify.models import Notification
from services.notify.sending import find_suppression, new_suppression, set_status
from shared import events, logs, outbox, tracing
from shared.db import Database, utcnow

log = logging.getLogger(__name__)

KNOWN_AT_ONCE = ("delivered", "temporary-failure", "permanent-failure")


def record_held(db: Database, guard: Safeguards, outcomes: list[Outcome],
                on_outbox: Callable[[], None]) -> None:
    """Record, retrying while the database is unreachable (for up to half of ``stale_after``).

    A failed record transaction rolled back, and :func:`record` skips rows no longer
    ``sending`` with our attempt, so trying again is safe even when a commit landed
    but its answer was lost.
    """
    deadline = time.monotonic() + guard.stale_after.total_seconds() / 2
    wait = guard.record_retry
    tries = 1
    while True:
        try:
            record(db, guard.retry, outcomes, on_outbox)
            if tries > 1:
                log.warning("recorded %d outcomes after %d tries", len(outcomes), tries)
            return
        except sa.exc.DBAPIError as exc:
            if not unreachable(exc) or time.monotonic() + wait > deadline:
                raise
            log.warning("database unreachable while recording %d outcomes (%s); trying "
                        "again in %.1f s", len(outcomes), type(exc.orig).__name__, wait)
        time.sleep(wait)
        wait, tries = min(wait * 2, 10.0), tries + 1


def record(db: Database, policy: RetryPolicy, outcomes: list[Outcome],
           on_outbox: Callable[[], None]) -> None:
    """Store the outcomes of rows still ours (``sending`` with the attempt we claimed)."""
    if not outcomes:
        return
    with db.transaction() as session:
        ids = [o.claim.row.id for o in outcomes]
        rows = {n.id: n for n in session.scalars(sa.select(Notification)
                                                 .where(Notification.id.in_(ids)))}
        for o in outcomes:
            row = rows.get(o.claim.row.id)
            if row is None or row.status != "sending" or row.attempts != o.claim.row.attempts:
                continue    # swept, or already moved on by a receipt: not ours any more
            with tracing.attached(o.traceparent or row.traceparent), \
                    logs.bound(correlation_id=row.correlation_id, tenant_id=row.tenant_id,
                               notification_id=row.id):
                apply(session, policy, row, o)
    on_outbox()


def apply(session: Session, policy: RetryPolicy, row: Notification, o: Outcome) -> None:
    """One outcome: the provider's reference, then ``sent`` and the outcome (or a retry)."""
    name = o.provider.name if o.provider else None
    cid = row.correlation_id
    if o.status == "retry":
        retry_or_give_up(session, policy, row, o.reason or "no provider answered", o.called)
        return
    if o.result is not None:
        row.provider_reference = o.result.reference
        sender = row.sender or getattr(o.provider, "sender", None)
        row.sender = sender if sender and len(sender) <= 32 else None
    if o.status in KNOWN_AT_ONCE and o.result is not None:
        set_status(session, row, "sent", provider=name, cid=cid)   # the hand-off, then the outcome
    set_status(session, row, o.status, provider=name, reason=o.reason, cid=cid)
    if o.suppress:
        suppress(session, row, source=name or "provider")


def retry_or_give_up(session: Session, policy: RetryPolicy, row: Notification, reason: str,
                     called: bool) -> None:
    """Back to ``created`` after a backoff, or ``technical-failure`` past the budget."""
    if not called:
        row.attempts -= 1   # no provider was reached: the attempt does not count
    elif row.attempts >= policy.max_attempts:
        set_status(session, row, "technical-failure", cid=row.correlation_id,
                   reason=f"gave up after {row.attempts} attempts: {reason}")
        return
    now = utcnow()
    row.status, row.handoff_at, row.updated_at = "created", None, now
    wait = policy.delay(row.attempts) if called else policy.base_delay
    row.not_before = now + dt.timedelta(seconds=wait)
    row.status_reason = f"retrying: {reason}"[:500]


def suppress(session: Session, row: Notification, *, source: str) -> None:
    """Add the recipient to the tenant's suppression list and announce the opt-out."""
    if find_suppression(session, row.tenant_id, row.channel, row.recipient) is None:
        session.add(new_suppression(session, row.tenant_id, row.channel, row.recipient,
                                    source=source, created_at=utcnow()))
    outbox.add(session, events.make("subscriber.opted_out", row.tenant_id, row.correlation_id,
                                    recipient=row.recipient, channel=row.channel, source=source))


def unreachable(exc: sa.exc.DBAPIError) -> bool:
    """The database is down or restarting (worth trying again), not a bug in the statement."""
    return (isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
            or bool(exc.connection_invalidated))
