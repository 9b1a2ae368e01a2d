"""Accepting a notification, and changing its status.

Accepting (from the API or a ``notification.requested`` event) validates,
renders and stores the notification as ``created`` in the caller's transaction;
the dispatcher (``dispatcher.py``) sends it.  Every status change goes through
:func:`set_status`, which records the event in the same transaction.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.models import Notification, Suppression, Template
from services.notify.templates import MissingPersonalisation, render_message
from shared import events, outbox, phone, smstext
from shared.db import utcnow
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
