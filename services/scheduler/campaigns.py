"""Campaigns: setting one up, changing it, pausing and archiving it, and how it reads back.

When each kind sends is :mod:`planner`'s business; this module keeps the
campaign's life cycle (``scheduled -> paused -> scheduled``, ``-> completed``
for a finished broadcast, ``-> archived`` for good) and what the service team
is told at setup: the capacity numbers and warnings (quiet hours, a window
the audience does not fit).
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

import sqlalchemy as sa
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy.orm import Session

from services.scheduler import audience, planner
from services.scheduler.models import UNFINISHED, Campaign, CampaignStat, Occurrence, Round
from services.scheduler.recurrence import local_date, local_instant, parse_time
from services.scheduler.schemas import check_schedule, load_schedule
from shared.db import utcnow
from shared.errors import Conflict, NotFound, ValidationError
from shared.http import iso
from shared.schemas import refusal
from shared.tenancy import Tenant

# A send_at a few seconds old is a clock or a network delay, not a mistake.
PAST_TOLERANCE = dt.timedelta(seconds=60)
FAILED = ("permanent-failure", "temporary-failure", "technical-failure")
RECENT_OCCURRENCES = 50
EDITABLE = ("name", "template_id", "channel", "audience", "personalisation", "urgent",
            "window", "sender", "fragments", "fragments_by_language")


def create(session: Session, tenant_id: str, args: dict, now: dt.datetime) -> Campaign:
    """A scheduled campaign and its first occurrences; raises ValidationError naming the field."""
    tenant = session.get(Tenant, tenant_id)
    send_at = args.get("send_at")
    if send_at is not None:
        send_at = send_at.astimezone(dt.UTC)
        if send_at < now - PAST_TOLERANCE:
            raise ValidationError("send_at must not be in the past")
    schedule = args.get("schedule") or {}
    _check_rounds(session, tenant_id, schedule)
    campaign = Campaign(
        id=str(uuid.uuid4()), tenant_id=tenant_id, name=args["name"], kind=args["kind"],
        template_id=str(args["template_id"]), channel=args["channel"],
        status="paused" if args.get("start_paused") else "scheduled",
        send_at=send_at, audience=args["audience"], personalisation=args["personalisation"],
        urgent=args["urgent"], schedule=schedule, window=args.get("window"),
        sender=args.get("sender"), fragments=args.get("fragments") or 1,
        fragments_by_language=args.get("fragments_by_language"),
        created_at=now, updated_at=now)
    session.add(campaign)
    session.flush()
    planner.plan(session, campaign, tenant, now)
    return campaign


def update(session: Session, campaign: Campaign, args: dict, now: dt.datetime) -> None:
    """Change what was given and plan the pending occurrences again."""
    if campaign.status in ("archived", "completed"):
        raise Conflict(f"The campaign is {campaign.status}: it can no longer be changed")
    if "schedule" in args:
        try:
            check_schedule(campaign.kind, args["schedule"] or {})
        except MarshmallowError as exc:
            raise refusal(exc) from exc
        campaign.schedule = load_schedule(campaign.kind, args["schedule"] or {})
        _check_rounds(session, campaign.tenant_id, campaign.schedule)
    if "send_at" in args:
        if campaign.kind != "broadcast":
            raise ValidationError(f"send_at: a {campaign.kind} campaign has no send_at")
        if args["send_at"] is None or args["send_at"] < now - PAST_TOLERANCE:
            raise ValidationError("send_at must not be in the past")
        campaign.send_at = args["send_at"].astimezone(dt.UTC)
    for name in EDITABLE:
        if name in args:
            value = args[name]
            setattr(campaign, name, str(value) if name == "template_id" else value)
    campaign.fragments = campaign.fragments or 1
    campaign.updated_at = now
    session.flush()
    planner.replan(session, campaign, session.get(Tenant, campaign.tenant_id), now)


def _check_rounds(session: Session, tenant_id: str, schedule: dict) -> None:
    codes = schedule.get("rounds") or []
    if not codes:
        return
    known = set(session.scalars(sa.select(Round.code).where(
        Round.tenant_id == tenant_id, Round.code.in_(codes))))
    missing = [c for c in codes if c not in known]
    if missing:
        raise ValidationError(f"schedule.rounds names rounds you have not set up: "
                              f"{', '.join(missing)} (POST /api/rounds first)")


def find(session: Session, tenant_id: str, campaign_id: str) -> Campaign:
    """The tenant's campaign; another tenant's (or no) campaign is the same 404."""
    try:
        cid = str(uuid.UUID(campaign_id))
    except ValueError:
        raise NotFound() from None
    campaign = session.scalars(sa.select(Campaign).where(
        Campaign.id == cid, Campaign.tenant_id == tenant_id)).first()
    if campaign is None:
        raise NotFound()
    return campaign


def pause(campaign: Campaign) -> None:
    """Stop sending; occurrences wait where they are (mid-batch too) until resumed."""
    if campaign.status == "paused":
        return
    if campaign.status != "scheduled":
        raise Conflict(f"The campaign is {campaign.status}: only a scheduled campaign can be "
                       "paused")
    campaign.status = "paused"
    campaign.updated_at = utcnow()


def resume(session: Session, campaign: Campaign) -> None:
    """Send again from where it stopped; an occurrence overdue by now goes out at once
    (or is skipped, if it is past the ticker's grace window)."""
    if campaign.status == "scheduled":
        return
    if campaign.status != "paused":
        raise Conflict(f"The campaign is {campaign.status}: only a paused campaign can be "
                       "resumed")
    recurring = campaign.kind != "broadcast"
    campaign.status = "scheduled" if recurring or has_unfinished(session, campaign.id) \
        else "completed"
    campaign.updated_at = utcnow()


def archive(session: Session, campaign: Campaign) -> None:
    """Retire a campaign for good: its pending occurrences are cancelled, its history kept."""
    if campaign.status == "archived":
        return
    campaign.status = "archived"
    campaign.updated_at = utcnow()
    session.execute(sa.update(Occurrence).where(
        Occurrence.campaign_id == campaign.id, Occurrence.status == "pending")
        .values(status="cancelled", note="campaign archived", updated_at=campaign.updated_at))


def has_unfinished(session: Session, campaign_id: str) -> bool:
    return session.scalar(sa.select(sa.func.count()).select_from(Occurrence).where(
        Occurrence.campaign_id == campaign_id, Occurrence.status.in_(UNFINISHED))) > 0


def summary(c: Campaign) -> dict:
    """A campaign as the API lists it."""
    return {"id": c.id, "name": c.name, "kind": c.kind, "template_id": c.template_id,
            "channel": c.channel, "status": c.status, "send_at": iso(c.send_at),
            "audience": c.audience or {}, "personalisation": c.personalisation or {},
            "urgent": c.urgent, "schedule": c.schedule or {}, "window": c.window,
            "sender": c.sender, "fragments": c.fragments or 1,
            "fragments_by_language": c.fragments_by_language,
            "created_at": iso(c.created_at), "updated_at": iso(c.updated_at)}


def totals(requested: int, skipped: int, stats: dict[str, int]) -> dict[str, int]:
    """The figures a team reads: requested, and what notify said became of them."""
    return {"requested": requested, "skipped": skipped, "sent": stats.get("sent", 0),
            "delivered": stats.get("delivered", 0),
            "failed": sum(stats.get(s, 0) for s in FAILED),
            "suppressed": stats.get("suppressed", 0), "deferred": stats.get("deferred", 0)}


def detail(session: Session, c: Campaign) -> dict:
    """A campaign with its occurrences, delivery figures, capacity and warnings."""
    per_occurrence: dict[str, dict[str, int]] = defaultdict(dict)
    total: dict[str, int] = defaultdict(int)
    for stat in session.scalars(sa.select(CampaignStat).where(
            CampaignStat.campaign_id == c.id, CampaignStat.tenant_id == c.tenant_id)):
        per_occurrence[stat.occurrence_key][stat.status] = stat.count
        total[stat.status] += stat.count
    requested, skipped = session.execute(sa.select(
        sa.func.coalesce(sa.func.sum(Occurrence.requested), 0),
        sa.func.coalesce(sa.func.sum(Occurrence.skipped), 0)).where(
        Occurrence.campaign_id == c.id)).one()
    tenant = session.get(Tenant, c.tenant_id)
    capacity = planner.capacity_report(session, c, tenant)
    return {**summary(c),
            "audience_size": audience.size(session, c.tenant_id, c.channel, c.audience or {}),
            "occurrences": [_occurrence(o, per_occurrence.get(o.occurrence_key, {}))
                            for o in _shown_occurrences(session, c)],
            "stats": dict(total), "totals": totals(requested, skipped, total),
            "capacity": capacity, "warnings": warnings(c, tenant, capacity)}


def _shown_occurrences(session: Session, c: Campaign) -> list[Occurrence]:
    # a collection campaign gains ~600 occurrences a year: show what is ahead and the latest
    ahead = session.scalars(sa.select(Occurrence).where(
        Occurrence.campaign_id == c.id, Occurrence.status.in_(UNFINISHED),
        Occurrence.appointment_id.is_(None))).all()
    done = session.scalars(sa.select(Occurrence).where(
        Occurrence.campaign_id == c.id, Occurrence.status.not_in(UNFINISHED),
        Occurrence.appointment_id.is_(None)).order_by(Occurrence.due_at.desc())
        .limit(RECENT_OCCURRENCES)).all()
    return sorted([*ahead, *done], key=lambda o: (o.due_at, o.occurrence_key))


def _occurrence(o: Occurrence, stats: dict[str, int]) -> dict:
    return {"occurrence_key": o.occurrence_key, "due_at": iso(o.due_at),
            "scheduled_at": iso(o.nominal_at or o.due_at), "status": o.status,
            "requested": o.requested, "skipped": o.skipped, "note": o.note,
            "audience": o.audience or {}, "planned_recipients": o.audience_size,
            "completed_at": iso(o.completed_at), "stats": stats,
            "totals": totals(o.requested, o.skipped, stats)}


def warnings(c: Campaign, tenant: Tenant | None, capacity: dict | None) -> list[str]:
    """What a service team should know before the campaign runs."""
    out = []
    quiet = planner.quiet_hours(tenant) if c.channel == "sms" and not c.urgent else None
    if quiet is not None:
        if c.kind == "broadcast" and c.send_at and quiet.contains(c.send_at):
            out.append(f"send_at is in quiet hours ({quiet.label()}): the broadcast goes at "
                       f"{quiet.next_end(c.send_at).isoformat()} instead")
        at = (c.schedule or {}).get("at")
        if c.kind == "collection" and at and quiet.contains(
                local_instant(local_date(utcnow()), parse_time(at))):
            out.append(f"schedule.at {at} is in quiet hours ({quiet.label()}): reminders move to "
                       f"{quiet.end:%H:%M} the next morning")
        for offset in (c.schedule or {}).get("offsets") or []:
            if offset.get("at") and quiet.contains(
                    local_instant(local_date(utcnow()), parse_time(offset["at"]))):
                out.append(f"schedule.offsets at {offset['at']} is in quiet hours "
                           f"({quiet.label()}): those reminders move to {quiet.end:%H:%M}")
    if capacity and not capacity["fits"]:
        out.append(f"capacity: {capacity['message']}")
    if c.sender and c.kind == "appointment" and not c.sender.lstrip("+").isdigit():
        out.append("sender: replies (CONFIRM/CANCEL) cannot reach an alphanumeric sender ID; "
                   "a two-way campaign sends from a number")
    return out
