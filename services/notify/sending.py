"""Accepting a notification, and changing its status.

Accepting (from the API, a bulk upload or a ``notification.requested`` event)
validates, renders and stores the notification as ``created`` in the caller's
transaction (``suppressed`` if the recipient opted out, ``deferred`` if it is a
text due in the tenant's quiet hours); the dispatcher (``dispatcher/``) sends
it.  Every status change goes through :func:`set_status`, which records the
event in the same transaction.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify import quiet_hours
from services.notify.models import Notification, Suppression, Template
from services.notify.templates import MissingPersonalisation, placeholder_key, render_message
from shared import logs, outbox, phone, pii, smstext, tracing
from shared.db import utcnow
from shared.errors import ValidationError
from shared.metrics import METRICS, tenant_label
from shared.tenancy import Tenant

log = logging.getLogger(__name__)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 320
EVENT_FOR_STATUS = {
    "sent": "notification.sent", "delivered": "notification.delivered",
    "permanent-failure": "notification.failed", "temporary-failure": "notification.failed",
    "technical-failure": "notification.failed", "suppressed": "notification.suppressed",
    "deferred": "notification.deferred",
}


class BadRequest(ValidationError):
    """Notify's ``BadRequestError`` (missing personalisation, template not found, too
    long); still a ValidationError, so event handlers treat it as a permanent refusal."""

    error = "BadRequestError"


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
    appointment_reference: str | None = None
    reply_code: str | None = None
    not_before: dt.datetime | None = None
    bulk_id: str | None = None
    sender: str | None = None      # a sender ID or number of the tenant's; None = its default
    # a v2 API send: transactional, not held by quiet hours unless the tenant asks
    transactional: bool = False
    sms_sender_id: str | None = None        # one of the tenant's sms_senders (Notify's option)
    email_reply_to_id: str | None = None    # one of the tenant's email_reply_to addresses
    unsubscribe_url: str | None = None      # Notify's one_click_unsubscribe_url (email)
    sanitise: tuple[str, ...] = ()          # Notify's sanitise_content_for: fields to unlink


def normalise_recipient(channel: str, raw: str) -> str:
    """E.164 for a phone number, lower case for an email address; 400 naming the field."""
    if channel == "sms":
        try:
            return phone.normalise(raw)
        except phone.InvalidPhoneNumber as exc:
            raise ValidationError(f"phone_number {exc}") from exc
    address = (raw or "").strip() if isinstance(raw, str) else ""
    if not EMAIL.match(address) or len(address) > MAX_EMAIL \
            or any(ord(c) < 32 or ord(c) == 127 for c in address):
        raise ValidationError("email_address Not a valid email address")
    return address.lower()


def find_template(session: Session, tenant: Tenant, template_id: str, channel: str) -> Template:
    """The tenant's live template for this channel, or a 400 as Notify answers."""
    template = session.scalars(sa.select(Template).where(
        Template.id == template_id, Template.tenant_id == tenant.id,
        Template.archived.is_(False))).first()
    if template is None:
        raise BadRequest("Template not found")
    if template.type != channel:
        raise BadRequest(f"{channel} template is not suitable for {template.type} "
                              "notification")
    return template


def build(tenant: Tenant, template: Template, req: SendRequest, now: dt.datetime) -> Notification:
    """Validate and render one notification (not yet stored); ValidationError names the field."""
    recipient = normalise_recipient(req.channel, req.recipient)
    if req.key_type == "team" and recipient not in tenant.setting("team_numbers"):
        raise BadRequest("Can't send to this recipient using a team-only API key")
    personalisation = sanitised(req.personalisation or {}, req.sanitise)
    try:
        rendered = render_message(req.channel, {"en": template.body_en, "cy": template.body_cy},
                                  {"en": template.subject_en, "cy": template.subject_cy},
                                  personalisation, req.language)
    except MissingPersonalisation as exc:
        raise BadRequest(str(exc)) from exc
    if req.channel == "sms" and smstext.too_long(rendered.body):
        raise BadRequest(f"Text messages cannot be longer than {smstext.MAX_CHARACTERS} "
                              f"characters. Your message is {len(rendered.body)} characters long.")
    for field, value in (("personalisation", rendered.body), ("personalisation", rendered.subject),
                         ("reference", req.reference)):
        if value and "\x00" in value:
            # PostgreSQL cannot store NUL in text: refuse it here rather than fail at commit
            raise ValidationError(f"{field} must not contain NUL (\\u0000) characters")
    refuse_files(req.personalisation)
    sender, reply_to = reply_to_for(tenant, req)
    return Notification(
        id=req.notification_id or str(uuid.uuid4()), tenant_id=tenant.id,
        template_id=template.id, template_version=template.version, api_key_id=req.key_id,
        key_type=req.key_type, channel=req.channel, recipient=recipient,
        language=rendered.language, body=rendered.body, subject=rendered.subject,
        reference=req.reference, status="created", urgent=req.urgent,
        encoding=rendered.sms.encoding if rendered.sms else None,
        fragment_count=rendered.sms.fragments if rendered.sms else None,
        campaign_id=req.campaign_id, occurrence_key=req.occurrence_key,
        appointment_id=req.appointment_id, appointment_reference=req.appointment_reference,
        reply_code=req.reply_code, not_before=req.not_before, bulk_id=req.bulk_id,
        sender=sender, reply_to=reply_to, unsubscribe_url=req.unsubscribe_url,
        traceparent=tracing.current_traceparent(), created_at=now, updated_at=now)


def _chosen(entries: list[dict], wanted: str | None) -> dict | None:
    """The entry with id ``wanted``, or (none wanted) the default entry; KeyError if the
    wanted id is not among them."""
    if wanted is None:
        return next((e for e in entries if e.get("is_default")), None)
    for e in entries:
        if e.get("id") == str(wanted):
            return e
    raise KeyError(wanted)


def reply_to_for(tenant: Tenant, req: SendRequest) -> tuple[str | None, str | None]:
    """(text sender, email reply-to) for this send, as GOV.UK Notify chooses them: the
    tenant's entry named by ``sms_sender_id`` / ``email_reply_to_id``, else its default;
    an id that is not the tenant's is Notify's 400."""
    sender = reply_to = None
    try:
        if req.channel == "sms":
            entry = _chosen(tenant.setting("sms_senders") or [], req.sms_sender_id)
            sender = entry["sms_sender"] if entry else None
        else:
            entry = _chosen(tenant.setting("email_reply_to") or [], req.email_reply_to_id)
            reply_to = entry["email_address"] if entry else None
    except KeyError as exc:
        field = "sms_sender_id" if req.channel == "sms" else "email_reply_to_id"
        raise BadRequest(f"{field} {exc.args[0]} does not exist in database for service id "
                         f"{tenant.id}") from None
    if req.sender:          # a native send naming a sender outright (inbound's replies)
        allowed = (tenant.setting("sender_ids") or []) + (tenant.setting("inbound_numbers") or [])
        allowed += [e["sms_sender"] for e in tenant.setting("sms_senders") or []]
        if req.sender not in allowed:
            raise ValidationError(f"sender {req.sender!r} is not one of this service's sender "
                                  "IDs or numbers")
        sender = req.sender
    return sender, reply_to


# a link in a value: with a scheme, from www., or a bare domain.tld[/path]
LINK = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://\S+|www\.\S+|"
                  r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?:/\S*)?)")


def sanitised(personalisation: dict, fields: tuple[str, ...]) -> dict:
    """``personalisation`` with links removed from the values named in ``fields``
    (GOV.UK Notify's ``sanitise_content_for``: a name a citizen typed into a form must
    not become a link in an email sent in the council's name).  Plain-text email
    renders no Markdown, so there is none to escape."""
    if not fields:
        return personalisation
    wanted = {placeholder_key(f) for f in fields}
    return {k: (re.sub(r"\s{2,}", " ", LINK.sub("", v)).strip()
                if isinstance(v, str) and placeholder_key(k) in wanted else v)
            for k, v in personalisation.items()}


def refuse_files(personalisation: dict | None) -> None:
    """A file to send by email (``prepare_upload``'s ``{"file": …}``) is refused as GOV.UK
    Notify refuses it for a service that has not set sending files up: Hysbys keeps no
    documents for download, and the file's bytes must never be written into a message."""
    for key, value in (personalisation or {}).items():
        if isinstance(value, dict) and "file" in value:
            raise BadRequest(f"Send files by email has not been set up - personalisation {key} "
                             "is a file, and Hysbys does not hold files for download: link to "
                             "the document on your own service instead")


def store(session: Session, tenant: Tenant, notifications: list[Notification],
          suppressed: set[str], correlation_id: str | None, now: dt.datetime, *,
          transactional: bool = False) -> None:
    """Add built notifications: an opted-out recipient ends ``suppressed``; a text due in
    the tenant's quiet hours is ``deferred`` to the end of them, when quiet hours hold it
    (:func:`quiet_hours.holds`: scheduled work, not a v2 API send or a test key's).

    Each keeps ``correlation_id`` (else the one the request or event being handled is
    logged with), so the dispatcher's events and log lines about it carry it later."""
    window = quiet_hours.tenant_window(tenant)
    correlation_id = correlation_id or logs.correlation_id.get()
    for n in notifications:
        n.correlation_id = n.correlation_id or correlation_id
    session.add_all(notifications)
    for n in notifications:
        if n.recipient in suppressed:
            set_status(session, n, "suppressed", reason="recipient opted out", cid=correlation_id)
            continue
        if not quiet_hours.holds(tenant, key_type=n.key_type, transactional=transactional):
            continue
        until = quiet_hours.defer_until(window, n.not_before or now, channel=n.channel,
                                        urgent=n.urgent)
        if until is not None:
            n.not_before = until
            local = until.astimezone(quiet_hours.LONDON)
            set_status(session, n, "deferred", cid=correlation_id,
                       reason=f"quiet hours: held until {local:%H:%M} Europe/London")


def suppressed_among(session: Session, tenant_id: str, channel: str,
                     recipients: set[str]) -> set[str]:
    """Which of ``recipients`` have opted out of this tenant's messages (one query)."""
    if not recipients:
        return set()
    by_hash = {pii.lookup_hash(session, r): r for r in recipients if r}
    return {by_hash[h] for h in session.scalars(sa.select(Suppression.recipient_hash).where(
        Suppression.tenant_id == tenant_id, Suppression.channel == channel,
        Suppression.recipient_hash.in_(by_hash)))}


def accept(session: Session, tenant: Tenant, req: SendRequest,
           correlation_id: str | None = None, now: dt.datetime | None = None) -> Notification:
    """Validate, render and store one notification; raises ValidationError naming the field."""
    now = now or utcnow()
    template = find_template(session, tenant, req.template_id, req.channel)
    n = build(tenant, template, req, now)
    store(session, tenant, [n], suppressed_among(session, tenant.id, n.channel, {n.recipient}),
          correlation_id, now, transactional=req.transactional)
    session.flush()
    return n


def is_suppressed(session: Session, tenant_id: str, channel: str, recipient: str) -> bool:
    return find_suppression(session, tenant_id, channel, recipient) is not None


def find_suppression(session: Session, tenant_id: str, channel: str,
                     recipient: str) -> Suppression | None:
    """The opt-out of ``recipient`` (found by its keyed hash), if there is one."""
    return session.get(Suppression, (tenant_id, channel, pii.lookup_hash(session, recipient)))


def new_suppression(session: Session, tenant_id: str, channel: str, recipient: str,
                    **fields) -> Suppression:
    """An opt-out row: the recipient encrypted, its keyed hash beside it (not yet added)."""
    return Suppression(tenant_id=tenant_id, channel=channel, recipient=recipient,
                       recipient_hash=pii.lookup_hash(session, recipient), **fields)


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
    METRICS.notifications.labels(status, n.channel, n.provider or "none",
                                 tenant_label(session, n.tenant_id)).inc()
    # the recipient goes through the logger on purpose: the formatter masks it (a test
    # scans a whole journey's DEBUG logs for numbers and addresses)
    log.debug("notification %s to %s is %s", n.id, n.recipient, status,
              extra={"notification_id": n.id, "tenant_id": n.tenant_id})
    # one item of this transaction's outcome batch (shared.outbox.collect): a dispatcher
    # recording 200 outcomes writes one event per status type, not 200
    outbox.collect(session, EVENT_FOR_STATUS[status], n.tenant_id, {
        "notification_id": n.id, "status": status, "channel": n.channel,
        "provider": n.provider, "reason": reason, "campaign_id": n.campaign_id,
        "occurrence_key": n.occurrence_key, "recipient": n.recipient,
        "appointment_id": n.appointment_id, "appointment_reference": n.appointment_reference,
        "reply_code": n.reply_code, "language": n.language}, correlation_id=cid)
