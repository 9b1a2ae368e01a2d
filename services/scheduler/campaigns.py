"""Campaigns: setting one up, the occurrences it plans, pausing, and how it reads back.

:func:`planned_occurrences` is where each campaign kind says when it sends; a
broadcast sends once, at ``send_at``.  Collection rounds and appointment
reminders add their own rule there and the ticker needs no change.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.scheduler import audience
from services.scheduler.models import UNFINISHED, Campaign, CampaignStat, Occurrence
from shared.db import utcnow
from shared.errors import Conflict, NotFound, ValidationError
from shared.http import iso

# A send_at a few seconds old is a clock or a network delay, not a mistake.
PAST_TOLERANCE = dt.timedelta(seconds=60)


def occurrence_key(when: dt.datetime) -> str:
    """A moment as an occurrence key: ``2026-11-25T18:00:00Z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def planned_occurrences(campaign: Campaign) -> list[tuple[str, dt.datetime]]:
    """(occurrence key, due time) for each time ``campaign`` sends."""
    if campaign.kind == "broadcast":
        return [(occurrence_key(campaign.send_at), campaign.send_at)]
    raise ValueError(f"campaign kind {campaign.kind!r} has no occurrence rule yet")


def create(session: Session, tenant_id: str, args: dict, now: dt.datetime) -> Campaign:
    """A scheduled campaign and its occurrences; raises ValidationError naming the field."""
    send_at = args["send_at"].astimezone(dt.UTC)
    if send_at < now - PAST_TOLERANCE:
        raise ValidationError("send_at must not be in the past")
    campaign = Campaign(
        id=str(uuid.uuid4()), tenant_id=tenant_id, name=args["name"], kind=args["kind"],
        template_id=str(args["template_id"]), channel=args["channel"], status="scheduled",
        send_at=send_at, audience=args["audience"], personalisation=args["personalisation"],
        urgent=args["urgent"], created_at=now, updated_at=now)
    session.add(campaign)
    for key, due_at in planned_occurrences(campaign):
        session.add(Occurrence(
            id=str(uuid.uuid4()), tenant_id=tenant_id, campaign_id=campaign.id,
            occurrence_key=key, due_at=due_at, status="pending", requested=0, skipped=0,
            created_at=now, updated_at=now))
    return campaign


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
    """Send again from where it stopped; an occurrence overdue by now goes out at once."""
    if campaign.status == "scheduled":
        return
    if campaign.status != "paused":
        raise Conflict(f"The campaign is {campaign.status}: only a paused campaign can be "
                       "resumed")
    campaign.status = "scheduled" if has_unfinished(session, campaign.id) else "completed"
    campaign.updated_at = utcnow()


def has_unfinished(session: Session, campaign_id: str) -> bool:
    return session.scalar(sa.select(sa.func.count()).select_from(Occurrence).where(
        Occurrence.campaign_id == campaign_id, Occurrence.status.in_(UNFINISHED))) > 0


def summary(c: Campaign) -> dict:
    """A campaign as the API lists it."""
    return {"id": c.id, "name": c.name, "kind": c.kind, "template_id": c.template_id,
            "channel": c.channel, "status": c.status, "send_at": iso(c.send_at),
            "audience": c.audience or {}, "personalisation": c.personalisation or {},
            "urgent": c.urgent, "created_at": iso(c.created_at), "updated_at": iso(c.updated_at)}


def detail(session: Session, c: Campaign) -> dict:
    """A campaign with its occurrences, their progress and delivery stats per status."""
    per_occurrence: dict[str, dict[str, int]] = defaultdict(dict)
    total: dict[str, int] = defaultdict(int)
    for stat in session.scalars(sa.select(CampaignStat).where(
            CampaignStat.campaign_id == c.id, CampaignStat.tenant_id == c.tenant_id)):
        per_occurrence[stat.occurrence_key][stat.status] = stat.count
        total[stat.status] += stat.count
    occurrences = session.scalars(sa.select(Occurrence).where(
        Occurrence.campaign_id == c.id, Occurrence.tenant_id == c.tenant_id)
        .order_by(Occurrence.due_at)).all()
    return {**summary(c),
            "audience_size": audience.size(session, c.tenant_id, c.channel, c.audience or {}),
            "occurrences": [{
                "occurrence_key": o.occurrence_key, "due_at": iso(o.due_at), "status": o.status,
                "requested": o.requested, "skipped": o.skipped,
                "completed_at": iso(o.completed_at),
                "stats": per_occurrence.get(o.occurrence_key, {})} for o in occurrences],
            "stats": dict(total)}
