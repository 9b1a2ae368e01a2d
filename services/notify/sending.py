"""Accepting a notification, and the dispatcher that hands notifications to providers.

Accepting (from the API or a ``notification.requested`` event) validates,
renders and stores the notification as ``created`` in the caller's transaction.
The dispatcher claims ``created`` rows in batches, fairly across tenants and
urgent first, marks them ``sending`` *before* any provider call and commits;
only then calls the provider, and records the outcome with its events.  A row
past ``created`` is never claimed again, so a redelivered event or a restarted
dispatcher cannot call a provider twice.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.models import Notification, Suppression, Template
from services.notify.providers.base import OutgoingMessage, Provider, ProviderError, SendResult
from services.notify.templates import MissingPersonalisation, render_message
from shared import events, outbox, phone, smstext
from shared.db import Database, utcnow
from shared.errors import ValidationError
from shared.metrics import METRICS
from shared.tenancy import Tenant

log = logging.getLogger(__name__)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EVENT_FOR_STATUS = {
    "sent": "notification.sent", "delivered": "notification.delivered",
    "permanent-failure": "notification.failed", "temporary-failure": "notification.failed",
    "technical-failure": "notification.failed", "suppressed": "notification.suppressed",
    "deferred": "notification.deferred",
}


@dataclass(frozen=True)
class SendRequest:
    channel: str
    template_id: str
    recipient: str
    personalisation: dict
    reference: str | None = None
    language: str | None = None
    key_id: str | None = None
    key_type: str = "live"
    notification_id: str | None = None
    urgent: bool = False
    campaign_id: str | None = None
    occurrence_key: str | None = None
    appointment_id: str | None = None
    not_before: dt.datetime | None = None


def normalise_recipient(channel: str, raw: str) -> str:
    if channel == "sms":
        try:
            return phone.normalise(raw)
        except phone.InvalidPhoneNumber as exc:
            raise ValidationError(str(exc)) from exc
    address = (raw or "").strip()
    if not EMAIL.match(address):
        raise ValidationError("email_address Not a valid email address")
    return address.lower()


def accept(session: Session, tenant: Tenant, req: SendRequest,
           correlation_id: str | None = None) -> Notification:
    """Validate, render and store one notification; raises ValidationError naming the field."""
    template = session.scalars(sa.select(Template).where(
        Template.id == req.template_id, Template.tenant_id == tenant.id,
        Template.archived.is_(False))).first()
    if template is None:
        raise ValidationError("Template not found")
    if template.type != req.channel:
        raise ValidationError(f"{req.channel} template is not suitable for {template.type} "
                              "notification")
    recipient = normalise_recipient(req.channel, req.recipient)
    if req.key_type == "team" and recipient not in tenant.setting("team_numbers"):
        raise ValidationError("Can't send to this recipient using a team-only API key", 400)
    try:
        rendered = render_message(req.channel, {"en": template.body_en, "cy": template.body_cy},
                                  {"en": template.subject_en, "cy": template.subject_cy},
                                  req.personalisation or {}, req.language)
    except MissingPersonalisation as exc:
        raise ValidationError(str(exc)) from exc
    if req.channel == "sms" and smstext.too_long(rendered.body):
        raise ValidationError(f"Text messages cannot be longer than {smstext.MAX_CHARACTERS} "
                              f"characters. Your message is {len(rendered.body)} characters long.")
    n = Notification(
        id=req.notification_id or str(uuid.uuid4()), tenant_id=tenant.id,
        template_id=template.id, template_version=template.version, api_key_id=req.key_id,
        key_type=req.key_type, channel=req.channel, recipient=recipient,
        language=rendered.language, body=rendered.body, subject=rendered.subject,
        reference=req.reference, status="created", urgent=req.urgent,
        encoding=rendered.sms.encoding if rendered.sms else None,
        fragment_count=rendered.sms.fragments if rendered.sms else None,
        campaign_id=req.campaign_id, occurrence_key=req.occurrence_key,
        appointment_id=req.appointment_id, not_before=req.not_before,
        created_at=utcnow(), updated_at=utcnow())
    session.add(n)
    if is_suppressed(session, tenant.id, req.channel, recipient):
        set_status(session, n, "suppressed", reason="recipient opted out", cid=correlation_id)
    session.flush()
    return n


def is_suppressed(session: Session, tenant_id: str, channel: str, recipient: str) -> bool:
    return session.get(Suppression, (tenant_id, channel, recipient)) is not None


def set_status(session: Session, n: Notification, status: str, *, provider: str | None = None,
               reason: str | None = None, cid: str | None = None) -> None:
    """Change a notification's status and record the event, in the caller's transaction."""
    now = utcnow()
    n.status = status
    n.updated_at = now
    if reason:
        n.status_reason = reason[:500]
    if provider:
        n.provider = provider
    if status == "sent" and n.sent_at is None:
        n.sent_at = now
    if status in ("delivered", "permanent-failure", "temporary-failure", "technical-failure",
                  "suppressed"):
        n.completed_at = now
    METRICS.notifications.labels(status, n.channel, n.provider or "none", n.tenant_id).inc()
    outbox.add(session, events.make(
        EVENT_FOR_STATUS[status], n.tenant_id, cid, notification_id=n.id, status=status,
        channel=n.channel, provider=n.provider, reason=reason, campaign_id=n.campaign_id,
        occurrence_key=n.occurrence_key, recipient=n.recipient, appointment_id=n.appointment_id))


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
            except Exception:  # noqa: BLE001 - the dispatcher must outlive DB outages
                log.exception("dispatcher failed; retrying")
                stop.wait(1.0)
