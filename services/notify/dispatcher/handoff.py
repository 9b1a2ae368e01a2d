"""Handing claimed notifications to their providers, at most once each.

One UPDATE stamps ``handoff_at`` on a chunk (only rows still ``sending`` with the
attempt number this dispatcher claimed); then each stamped row goes to its
providers in order, failing over on a retryable error.  A row that is not stamped
is not sent, and a stamped row is never sent again (the sweeper fails one whose
outcome was never recorded).  Each call is made with the notification's
correlation id, tenant and id bound into the logging context, inside a client
span that is the child of the request or event that made the row.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import sqlalchemy as sa

from services.notify.dispatcher.claim import Claim
from services.notify.dispatcher.lanes import remote
from services.notify.dispatcher.safeguards import Safeguards
from services.notify.models import Notification, Suppression
from services.notify.providers.base import OutgoingMessage, Provider, ProviderError, SendResult
from shared import logs, pii, tracing
from shared.db import Database, utcnow

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a hand-off came to, for :mod:`~services.notify.dispatcher.record` to store."""

    claim: Claim
    status: str                       # a status, or "retry"
    provider: Provider | None = None
    result: SendResult | None = None
    reason: str | None = None
    suppress: bool = False
    called: bool = True               # False: every circuit refused, no provider was called
    traceparent: str | None = None    # the provider call's span: the outcome's events follow it


def opted_out(db: Database, rows: list[Notification]) -> frozenset:
    """(tenant, channel, recipient) of the rows whose recipient is on a suppression list."""
    with db.read() as session:
        by_hash = {pii.lookup_hash(session, n.recipient): n.recipient for n in rows
                   if n.recipient}
        found = session.execute(sa.select(Suppression.tenant_id, Suppression.channel,
                                          Suppression.recipient_hash)
                                .where(Suppression.recipient_hash.in_(by_hash))).all()
    return frozenset((t, c, by_hash[h]) for t, c, h in found)


def stamp(db: Database, claims: list[Claim]) -> set[str]:
    """Stamp ``handoff_at`` on the claims still ours; returns the ids stamped."""
    if not claims:
        return set()
    mine = [(c.row.id, c.row.attempts) for c in claims]
    with db.transaction() as session:
        stamped = session.scalars(
            sa.update(Notification)
            .where(sa.tuple_(Notification.id, Notification.attempts).in_(mine),
                   Notification.status == "sending", Notification.handoff_at.is_(None))
            .values(handoff_at=utcnow()).returning(Notification.id)).all()
    return set(stamped)


def send(claim: Claim, guard: Safeguards) -> Outcome:
    """Call the claim's providers in order until one answers; the outcome is not stored."""
    n = claim.row
    with logs.bound(correlation_id=n.correlation_id, tenant_id=n.tenant_id,
                    notification_id=n.id):
        return _send(claim, guard)


def _send(claim: Claim, guard: Safeguards) -> Outcome:
    n = claim.row
    msg = OutgoingMessage(notification_id=n.id, channel=n.channel, to=n.recipient or "",
                          body=n.body or "", subject=n.subject, sender=n.sender,
                          reply_to=n.reply_to, unsubscribe_url=n.unsubscribe_url)
    if not claim.plan:
        return Outcome(claim, "technical-failure", reason="no provider configured")
    errors = []
    called = False
    for provider in claim.plan:
        breaker = guard.breakers[provider.name] if remote(provider) else None
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
            _observe(guard, provider, breaker, started, ok=False, outage=exc.kind == "outage")
            if not exc.retryable:
                return Outcome(claim, exc.status, provider, reason=str(exc), suppress=exc.suppress,
                               traceparent=traceparent)
            errors.append(f"{provider.name}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - an adapter bug must not strand the chunk
            log.exception("provider %s failed unexpectedly", provider.name,
                          extra={"notification_id": n.id})
            _observe(guard, provider, breaker, started, ok=False, outage=True)
            errors.append(f"{provider.name}: {type(exc).__name__}")
            continue
        _observe(guard, provider, breaker, started, ok=True, outage=False)
        return Outcome(claim, result.status, provider, result, result.reason,
                       traceparent=traceparent)
    return Outcome(claim, "retry", reason="; ".join(errors), called=called)


def _observe(guard: Safeguards, provider: Provider, breaker, started: float, *, ok: bool,
             outage: bool) -> None:
    if remote(provider):
        guard.health.observe(provider.name, time.perf_counter() - started, ok)
    if breaker is not None:
        breaker.record(outage)


def _call_span(n: Notification, provider: Provider):
    """The provider call's client span, child of the request or event that made the row."""
    return tracing.span(f"send {n.channel} via {provider.name}", parent=n.traceparent,
                        kind=tracing.SpanKind.CLIENT,
                        attributes={"hysbys.notification_id": n.id, "hysbys.tenant_id": n.tenant_id,
                                    "hysbys.provider": provider.name, "hysbys.channel": n.channel,
                                    "hysbys.attempt": n.attempts})
