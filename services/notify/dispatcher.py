"""The dispatcher: hands created notifications to providers, fairly and exactly once.

It claims ``created`` rows in batches, fairly across tenants and urgent first,
marks them ``sending`` *before* any provider call and commits; only then calls
the provider, and records the outcome with its events.  A row past ``created``
is never claimed again, so a redelivered event or a restarted dispatcher cannot
call a provider twice.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.models import Notification, Suppression
from services.notify.providers.base import OutgoingMessage, Provider, ProviderError, SendResult
from services.notify.sending import set_status
from shared.db import Database, utcnow
from shared.tenancy import Tenant

log = logging.getLogger(__name__)


ProviderChooser = Callable[[Notification, Tenant], list[Provider]]


class Dispatcher:
    """Claims created notifications fairly across tenants and hands them to providers."""

    def __init__(self, db: Database, choose: ProviderChooser, *, batch: int = 200,
                 interval: float = 0.1, on_outbox: Callable[[], None] | None = None):
        self.db = db
        self.choose = choose
        self.batch = batch
        self.interval = interval
        self.nudge = threading.Event()
        self.on_outbox = on_outbox or (lambda: None)

    def claim(self) -> list[Notification]:
        """Mark up to ``batch`` notifications ``sending`` and return them.

        Fairness: each tenant with work gets an equal share of the batch, its
        urgent notifications first, so one council's 100,000 bin reminders do
        not hold up another board's appointment reminder due now.
        """
        now = utcnow()
        due = sa.and_(Notification.status == "created",
                      sa.or_(Notification.not_before.is_(None), Notification.not_before <= now))
        with self.db.transaction() as session:
            tenants = session.scalars(sa.select(Notification.tenant_id).where(due).distinct()
                                      ).all()
            if not tenants:
                return []
            share = max(1, self.batch // len(tenants))
            claimed: list[Notification] = []
            for tenant_id in tenants:
                q = (sa.select(Notification).where(due, Notification.tenant_id == tenant_id)
                     .order_by(Notification.urgent.desc(), Notification.created_at)
                     .limit(share))
                if self.db.dialect == "postgresql":
                    q = q.with_for_update(skip_locked=True)
                claimed.extend(session.scalars(q).all())
            for n in claimed:
                n.status = "sending"
                n.attempts += 1
                n.updated_at = now
            session.flush()
            for n in claimed:
                session.expunge(n)
            return claimed

    def run_once(self) -> int:
        claimed = self.claim()
        if not claimed:
            return 0
        outcomes: list[tuple[Notification, str, str | None, SendResult | None, str | None]] = []
        tenants: dict[str, Tenant] = {}
        with self.db.read() as session:
            for tid in {n.tenant_id for n in claimed}:
                tenants[tid] = session.get(Tenant, tid)
                session.expunge(tenants[tid])
            suppressed = self._suppressed(session, claimed)
        for n in claimed:
            if (n.tenant_id, n.channel, n.recipient) in suppressed:
                outcomes.append((n, "suppressed", None, None, "recipient opted out"))
                continue
            outcomes.append(self._hand_off(n, tenants[n.tenant_id]))
        self._record(outcomes)
        return len(claimed)

    def _suppressed(self, session: Session, claimed: list[Notification]) -> set:
        recipients = {n.recipient for n in claimed}
        rows = session.execute(sa.select(Suppression.tenant_id, Suppression.channel,
                                         Suppression.recipient)
                               .where(Suppression.recipient.in_(recipients))).all()
        return {tuple(r) for r in rows}

    def _hand_off(self, n: Notification, tenant: Tenant):
        msg = OutgoingMessage(notification_id=n.id, channel=n.channel, to=n.recipient or "",
                              body=n.body or "", subject=n.subject)
        last_error = "no provider configured"
        for provider in self.choose(n, tenant):
            try:
                result = provider.send(msg)
                return (n, result.status, provider.name, result, result.reason)
            except ProviderError as exc:
                last_error = str(exc)
                if not exc.retryable:
                    return (n, exc.status, provider.name, None, last_error)
        return (n, "technical-failure", None, None, last_error)

    def _record(self, outcomes) -> None:
        with self.db.transaction() as session:
            for n, status, provider_name, result, reason in outcomes:
                row = session.get(Notification, n.id)
                if row is None or row.status != "sending":
                    continue
                if result is not None:
                    row.provider_reference = result.reference
                if status in ("delivered", "temporary-failure", "permanent-failure"):
                    # the simulator knows at once: record the hand-off, then the outcome
                    set_status(session, row, "sent", provider=provider_name)
                set_status(session, row, status, provider=provider_name, reason=reason)
        self.on_outbox()

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self.run_once() == 0:
                    self.nudge.wait(self.interval)
                    self.nudge.clear()
            except Exception:
                log.exception("dispatcher failed; retrying")
                stop.wait(1.0)
