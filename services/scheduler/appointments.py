"""Appointments: booked, moved and cancelled by a health board's system, reminded at offsets.

The board knows an appointment by its own reference, so a POST with a known
``external_reference`` updates rather than duplicates, and a PATCH or DELETE
names it in the path.  Each reminder is an occurrence of the appointment
campaign (default: 7 days and 1 day before, at the appointment's own wall
time), keyed by the appointment, its time and the offset: a moved appointment
plans new keys, so its reminders are sent again for the new time, and the
pending reminders of the old time are gone.  A cancellation, by the board or
by the citizen (``appointment.cancelled`` from inbound), cancels the pending
reminders and keeps the record of what was sent.
"""
from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.scheduler import planner
from services.scheduler.models import Appointment, Campaign, Occurrence
from services.scheduler.recurrence import (
    DAYS,
    LONDON,
    MONTHS,
    local_date,
    local_instant,
    parse_time,
    shift_local,
)
from shared import phone, pii
from shared.db import utcnow
from shared.errors import Conflict, NotFound, ValidationError
from shared.http import iso
from shared.tenancy import Tenant

log = logging.getLogger(__name__)

DEFAULT_OFFSETS = [{"days_before": 7}, {"days_before": 1}]
STATUSES = ("booked", "confirmed", "rearrange_requested", "cancelled")
# an appointment a patient's reply can still act on
LIVE = ("booked", "confirmed", "rearrange_requested")


def offsets_of(appointment: Appointment, campaign: Campaign) -> list[dict]:
    return appointment.offsets or (campaign.schedule or {}).get("offsets") or DEFAULT_OFFSETS


def reminder_time(starts_at: dt.datetime, offset: dict) -> dt.datetime:
    """When an offset reminds: ``at`` local on the day ``days_before`` earlier, or the
    appointment's own wall time ``days_before`` days and ``hours_before`` hours earlier."""
    days = int(offset.get("days_before", 0))
    if offset.get("at"):
        return local_instant(local_date(starts_at) - dt.timedelta(days=days),
                             parse_time(offset["at"]))
    return shift_local(starts_at, days) - dt.timedelta(hours=int(offset.get("hours_before", 0)))


def offset_label(offset: dict) -> str:
    label = f"{int(offset.get('days_before', 0))}d{int(offset.get('hours_before', 0))}h"
    return label + (f"@{offset['at'].replace(':', '')}" if offset.get("at") else "")


def facts(appointment: Appointment) -> dict:
    """What a reminder can say: the date and time in both languages, the reply code."""
    local = appointment.starts_at.astimezone(LONDON)
    day = local.date()
    out = {**(appointment.personalisation or {}), "appointment_date": day.isoformat(),
           "appointment_time": f"{local:%H:%M}", "reply_code": appointment.reply_code}
    for lang in ("en", "cy"):
        out[f"appointment_date_{lang}"] = (f"{DAYS[lang][day.weekday()]} {day.day} "
                                           f"{MONTHS[lang][day.month - 1]}")
    return out


def plan_reminders(appointment: Appointment, campaign: Campaign, now: dt.datetime
                   ) -> list[planner.Planned]:
    """The reminders still ahead (a 7-day reminder for a booking 3 days off is not made)."""
    out = []
    stamp = planner.occurrence_key(appointment.starts_at)
    for offset in offsets_of(appointment, campaign):
        when = reminder_time(appointment.starts_at, offset)
        if when < now - dt.timedelta(seconds=60) or when >= appointment.starts_at:
            continue
        out.append(planner.Planned(f"{appointment.id}:{stamp}:{offset_label(offset)}", when, 1,
                                   personalisation=facts(appointment),
                                   appointment_id=appointment.id))
    return out


def appointment_campaign(session: Session, tenant_id: str, campaign_id) -> Campaign:
    campaign = session.scalars(sa.select(Campaign).where(
        Campaign.id == str(campaign_id), Campaign.tenant_id == tenant_id)).first()
    if campaign is None or campaign.kind != "appointment":
        raise ValidationError("campaign_id must be one of your appointment campaigns")
    if campaign.status == "archived":
        raise ValidationError("campaign_id names an archived campaign")
    return campaign


def find(session: Session, tenant_id: str, reference: str) -> Appointment:
    found = session.scalars(sa.select(Appointment).where(
        Appointment.tenant_id == tenant_id, Appointment.external_reference == reference)).first()
    if found is None:
        raise NotFound()
    return found


def upsert(session: Session, tenant: Tenant, args: dict, now: dt.datetime
           ) -> tuple[Appointment, bool]:
    """Book (or, for a known reference, update) an appointment; (appointment, created)."""
    existing = session.scalars(sa.select(Appointment).where(
        Appointment.tenant_id == tenant.id,
        Appointment.external_reference == args["external_reference"])).first()
    if existing is not None:
        if existing.status == "cancelled":
            existing.status, existing.status_source = "booked", "board"   # booked again
        change(session, tenant, existing, args, now)
        return existing, False
    campaign = appointment_campaign(session, tenant.id, args["campaign_id"])
    appt = Appointment(id=str(uuid.uuid4()), tenant_id=tenant.id, campaign_id=campaign.id,
                       external_reference=args["external_reference"], status="booked",
                       personalisation={}, created_at=now, updated_at=now)
    _apply(appt, campaign, args, now)
    appt.reply_code = _reply_code(session, tenant.id, appt)
    session.add(appt)
    session.flush()
    planner.store(session, campaign, tenant, plan_reminders(appt, campaign, now), now)
    return appt, True


def change(session: Session, tenant: Tenant, appt: Appointment, args: dict,
           now: dt.datetime) -> None:
    """Apply a board's change; the pending reminders are planned again from it."""
    if appt.status == "cancelled":
        raise Conflict("The appointment is cancelled: book it again with POST /api/appointments")
    if args.get("campaign_id") and str(args["campaign_id"]) != appt.campaign_id:
        appointment_campaign(session, tenant.id, args["campaign_id"])
        _cancel_pending(session, appt, "moved to another campaign")
        appt.campaign_id = str(args["campaign_id"])
    campaign = session.get(Campaign, appt.campaign_id)
    moved = "starts_at" in args and args["starts_at"].astimezone(dt.UTC) != appt.starts_at
    _apply(appt, campaign, args, now)
    if moved and appt.status == "rearrange_requested":
        # the board has rearranged it: booked again at the new time
        appt.status, appt.status_source = "booked", "board"
    appt.updated_at = now
    session.flush()
    # Reminders not yet sent are planned afresh (a new time is a new key, so the
    # citizen is reminded of the new time even if the old one was reminded).
    session.execute(sa.delete(Occurrence).where(
        Occurrence.appointment_id == appt.id, Occurrence.status.in_(("pending", "cancelled")),
        Occurrence.requested == 0))
    planner.store(session, campaign, tenant, plan_reminders(appt, campaign, now), now)


def _apply(appt: Appointment, campaign: Campaign, args: dict, now: dt.datetime) -> None:
    if "starts_at" in args:
        starts_at = args["starts_at"].astimezone(dt.UTC)
        if starts_at <= now:
            raise ValidationError("starts_at must be in the future")
        appt.starts_at = starts_at
    for name in ("language", "offsets"):
        if name in args:
            setattr(appt, name, args[name])
    if "personalisation" in args:
        appt.personalisation = {**(appt.personalisation or {}), **args["personalisation"]}
    if args.get("phone"):
        try:
            appt.phone = phone.normalise(args["phone"])
        except phone.InvalidPhoneNumber as exc:
            raise ValidationError(f"phone {exc}") from exc
    if args.get("email"):
        try:
            appt.email = phone.normalise_email(args["email"])
        except ValueError as exc:
            raise ValidationError(f"email {exc}") from exc
    if campaign.channel == "sms" and not appt.phone:
        raise ValidationError("phone is required: the campaign sends text messages")
    if campaign.channel == "email" and not appt.email:
        raise ValidationError("email is required: the campaign sends emails")


def live_of_phone(session: Session, tenant_id: str, number: str) -> list[Appointment]:
    """This number's live appointments with this tenant, soonest first."""
    return list(session.scalars(sa.select(Appointment).where(
        Appointment.tenant_id == tenant_id, same_contact(session, number, None),
        Appointment.status.in_(LIVE)).order_by(Appointment.starts_at, Appointment.id)))


def same_contact(session: Session, phone_: str | None, email: str | None):
    """The SQL condition "this patient's appointments": by the keyed hash of their phone
    (or, with none, their email); the contact itself is encrypted (shared.pii)."""
    if phone_:
        return Appointment.phone_hash == pii.lookup_hash(session, phone_)
    return Appointment.email_hash == pii.lookup_hash(session, email)


def _reply_code(session: Session, tenant_id: str, appt: Appointment) -> str:
    """Four digits, different from this citizen's other live appointments' codes."""
    contact = same_contact(session, appt.phone, appt.email)
    taken = set(session.scalars(sa.select(Appointment.reply_code).where(
        Appointment.tenant_id == tenant_id, contact, Appointment.status.in_(LIVE))))
    while True:
        code = f"{1000 + secrets.randbelow(9000)}"
        if code not in taken:
            return code


def cancel(session: Session, appt: Appointment, source: str, now: dt.datetime) -> None:
    """Cancel the appointment and its pending reminders (idempotent)."""
    if appt.status == "cancelled":
        return
    appt.status, appt.status_source, appt.updated_at = "cancelled", source, now
    _cancel_pending(session, appt, f"appointment cancelled ({source})")


def _cancel_pending(session: Session, appt: Appointment, why: str) -> None:
    session.execute(sa.update(Occurrence).where(
        Occurrence.appointment_id == appt.id, Occurrence.status == "pending")
        .values(status="cancelled", note=why, updated_at=utcnow()))


def summary(appt: Appointment) -> dict:
    """An appointment in a list: what it is, when, and what the patient did."""
    return {"id": appt.id, "external_reference": appt.external_reference,
            "campaign_id": appt.campaign_id, "phone": appt.phone, "email": appt.email,
            "language": appt.language, "starts_at": iso(appt.starts_at), "status": appt.status,
            "status_source": appt.status_source, "reply_code": appt.reply_code,
            "created_at": iso(appt.created_at), "updated_at": iso(appt.updated_at)}


def listed(tenant_id: str, args: dict) -> sa.Select:
    """``GET /api/appointments``: the tenant's, filtered by status, day range, reference.

    ``starts_from`` / ``starts_to`` are days in Europe/London, both included.
    """
    q = sa.select(Appointment).where(Appointment.tenant_id == tenant_id)
    if args.get("status"):
        q = q.where(Appointment.status.in_(args["status"]))
    if args.get("reference"):
        q = q.where(Appointment.external_reference == args["reference"])
    if args.get("starts_from"):
        q = q.where(Appointment.starts_at >= local_instant(args["starts_from"], dt.time(0)))
    if args.get("starts_to"):
        q = q.where(Appointment.starts_at < local_instant(
            args["starts_to"] + dt.timedelta(days=1), dt.time(0)))
    return q


def for_replies(appt: Appointment) -> dict:
    """What inbound needs to match a patient's reply to this appointment."""
    return {"id": appt.id, "external_reference": appt.external_reference,
            "reply_code": appt.reply_code, "status": appt.status,
            "starts_at": iso(appt.starts_at), "language": appt.language}


def detail(session: Session, appt: Appointment) -> dict:
    reminders = session.scalars(sa.select(Occurrence).where(
        Occurrence.appointment_id == appt.id).order_by(Occurrence.due_at)).all()
    return {"id": appt.id, "external_reference": appt.external_reference,
            "campaign_id": appt.campaign_id, "phone": appt.phone, "email": appt.email,
            "language": appt.language, "starts_at": iso(appt.starts_at), "status": appt.status,
            "status_source": appt.status_source, "reply_code": appt.reply_code,
            "personalisation": appt.personalisation or {}, "offsets": appt.offsets,
            "reminders": [{"occurrence_key": o.occurrence_key, "due_at": iso(o.due_at),
                           "status": o.status, "note": o.note} for o in reminders],
            "created_at": iso(appt.created_at), "updated_at": iso(appt.updated_at)}


# -- the citizen's replies (events from inbound) ------------------------------------

def _from_event(session: Session, tenant_id: str, data: dict) -> Appointment | None:
    found = session.scalars(sa.select(Appointment).where(
        Appointment.tenant_id == tenant_id, Appointment.id == str(data["appointment_id"]))
    ).first()
    if found is None and data.get("external_reference"):
        found = session.scalars(sa.select(Appointment).where(
            Appointment.tenant_id == tenant_id,
            Appointment.external_reference == data["external_reference"])).first()
    if found is None:
        log.warning("reply for unknown appointment %s", data["appointment_id"])
    return found


def on_cancelled(event, session: Session) -> None:
    """The citizen cancelled by reply: no more reminders for that appointment."""
    appt = _from_event(session, str(event.tenant_id), event.data)
    if appt is not None:
        cancel(session, appt, event.data.get("source") or "reply", utcnow())


def on_confirmed(event, session: Session) -> None:
    """The citizen confirmed by reply: recorded (reminders still go, as a reminder)."""
    appt = _from_event(session, str(event.tenant_id), event.data)
    if appt is not None and appt.status in ("booked", "rearrange_requested"):
        appt.status, appt.status_source = "confirmed", event.data.get("source") or "reply"
        appt.updated_at = utcnow()


def on_rearrange_requested(event, session: Session) -> None:
    """The citizen asked to rearrange (reply 2): recorded until the board moves it.

    The appointment stands until the board changes it, so its reminders still go.
    """
    appt = _from_event(session, str(event.tenant_id), event.data)
    if appt is not None and appt.status in ("booked", "confirmed"):
        appt.status = "rearrange_requested"
        appt.status_source = event.data.get("source") or "reply"
        appt.updated_at = utcnow()
