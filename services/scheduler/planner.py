"""Planning occurrences: when each campaign kind sends, and how its sends are spread.

* A **broadcast** has one occurrence, keyed by its send time in UTC.
* A **collection** campaign has one occurrence per round and collection date,
  keyed ``A:2026-03-31`` (the date, never the instant: a clock change cannot
  make a second key), planned lazily ``HORIZON`` ahead by :func:`plan`, which
  the ticker calls as time passes; years are never materialised.
* An **appointment** has one occurrence per reminder offset, keyed by the
  appointment, its time and the offset (``appointments.py`` plans those).

Each occurrence gets a :class:`~services.scheduler.capacity.Slot`: occurrences
of one campaign due at the same moment (five rounds collected on one day)
share the tenant's capacity, so the second starts where the first ends.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.scheduler import audience, capacity
from services.scheduler.models import Campaign, Occurrence, Round, Subscriber
from services.scheduler.recurrence import (
    Calendar,
    QuietHours,
    describe_date,
    local_date,
    parse_time,
    reminder_at,
)
from shared.db import insert_for
from shared.tenancy import Tenant

HORIZON = dt.timedelta(days=14)
# A campaign's horizon is pushed on once it is this far behind now + HORIZON.
REPLAN_EVERY = dt.timedelta(days=1)
# After downtime, occurrences are planned (and so skipped and recorded) this far back.
CATCH_UP = dt.timedelta(days=2)


def occurrence_key(when: dt.datetime) -> str:
    """A moment as an occurrence key: ``2026-11-25T18:00:00Z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Planned:
    """An occurrence before it is stored."""

    key: str
    nominal: dt.datetime
    recipients: int
    audience: dict = field(default_factory=dict)
    personalisation: dict = field(default_factory=dict)
    appointment_id: str | None = None


def quiet_hours(tenant: Tenant | None) -> QuietHours | None:
    return QuietHours.of(tenant.setting("quiet_hours")) if tenant else None


def tenant_capacity(tenant: Tenant | None) -> capacity.Capacity:
    return capacity.Capacity.of(tenant.setting("capacity") if tenant else None)


def message_fragments(campaign: Campaign, languages: dict[str, int] | None = None) -> float:
    """A message's cost for timing: notify's count per language (capacity.py)."""
    return capacity.fragments_per_message(campaign.fragments_by_language,
                                          campaign.fragments or 1, languages)


def slot_for(campaign: Campaign, tenant: Tenant | None, nominal: dt.datetime,
             recipients: int, languages: dict[str, int] | None = None,
             fragments: float | None = None) -> capacity.Slot:
    """The slot an occurrence of ``campaign`` scheduled at ``nominal`` gets (``fragments``:
    a message's cost if the caller knows it better than the stored counts)."""
    quiet = quiet_hours(tenant) if campaign.channel == "sms" else None
    if fragments is None:
        fragments = message_fragments(campaign, languages)
    return capacity.slot(nominal, recipients, fragments,
                         tenant_capacity(tenant), campaign_window=campaign.window, quiet=quiet,
                         urgent=campaign.urgent)


def store(session: Session, campaign: Campaign, tenant: Tenant | None, plans: Iterable[Planned],
          now: dt.datetime) -> int:
    """Insert the planned occurrences not already there; returns how many were new."""
    groups: dict[dt.datetime, list[Planned]] = defaultdict(list)
    for p in plans:
        groups[p.nominal].append(p)
    rows = []
    for nominal, group in sorted(groups.items()):
        group.sort(key=lambda p: p.key)
        slot = slot_for(campaign, tenant, nominal, sum(p.recipients for p in group))
        offset = 0
        for p in group:
            rows.append(_row(campaign, p, slot, offset, now))
            offset += p.recipients
    if not rows:
        return 0
    # another ticker planning the same campaign: the unique key keeps one of each
    result = session.connection().execute(insert_for(session, Occurrence).on_conflict_do_nothing(
        index_elements=["campaign_id", "occurrence_key"]), rows)
    return result.rowcount if result.rowcount >= 0 else len(rows)


def _row(campaign: Campaign, p: Planned, slot: capacity.Slot, offset: int,
         now: dt.datetime) -> dict:
    send_from = slot.start + dt.timedelta(seconds=offset * slot.spacing)
    moved = slot.start != p.nominal
    return {"id": str(uuid.uuid4()), "tenant_id": campaign.tenant_id, "campaign_id": campaign.id,
            "occurrence_key": p.key, "due_at": slot.start, "status": "pending",
            "audience": p.audience, "personalisation": p.personalisation,
            "appointment_id": p.appointment_id, "nominal_at": p.nominal if moved else None,
            "note": slot.moved if moved else None, "send_from": send_from,
            "spacing": slot.spacing if p.appointment_id is None else 0.0,
            "audience_size": p.recipients, "requested": 0, "skipped": 0,
            "created_at": now, "updated_at": now}


# -- what each kind plans ---------------------------------------------------------

def broadcast_plan(session: Session, campaign: Campaign) -> list[Planned]:
    size = audience.size(session, campaign.tenant_id, campaign.channel, campaign.audience or {})
    return [Planned(occurrence_key(campaign.send_at), campaign.send_at, size)]


def campaign_rounds(session: Session, campaign: Campaign) -> list[Round]:
    """The rounds a collection campaign reminds of (all the tenant's, unless it names some)."""
    query = sa.select(Round).where(Round.tenant_id == campaign.tenant_id).order_by(Round.code)
    codes = (campaign.schedule or {}).get("rounds")
    if codes:
        query = query.where(Round.code.in_(codes))
    return list(session.scalars(query))


def round_personalisation(r: Round, day: dt.date, moved_from: dt.date | None) -> dict:
    """What a reminder can say about a collection: which bins, which day, moved or not."""
    described = r.description or {}
    return {**(r.personalisation or {}), "round": r.code, "round_name": r.name,
            "bins_cy": described.get("cy", ""), "bins_en": described.get("en", ""),
            **describe_date(day), "collection_moved": moved_from is not None,
            "usual_date": (moved_from or day).isoformat()}


def collection_plan(session: Session, campaign: Campaign, after: dt.datetime,
                    until: dt.datetime) -> list[Planned]:
    """Reminders whose scheduled time is in (after, until]."""
    schedule = campaign.schedule or {}
    days_before, at = int(schedule.get("days_before", 1)), parse_time(schedule.get("at", "18:00"))
    rounds = campaign_rounds(session, campaign)
    counts = audience.sizes_by(session, campaign.tenant_id, campaign.channel,
                               campaign.audience or {}, "round", [r.code for r in rounds])
    first = local_date(after) + dt.timedelta(days=days_before)
    last = local_date(until) + dt.timedelta(days=days_before + 1)
    out = []
    for r in rounds:
        calendar = Calendar.of(r.rrule, r.start, r.exdates or [], r.moves or [])
        for day, moved_from in calendar.dates(first, last):
            nominal = reminder_at(day, days_before, at)
            if after < nominal <= until:
                out.append(Planned(f"{r.code}:{day.isoformat()}", nominal, counts.get(r.code, 0),
                                   {"round": r.code}, round_personalisation(r, day, moved_from)))
    return out


def plan(session: Session, campaign: Campaign, tenant: Tenant | None, now: dt.datetime) -> int:
    """Plan what is due next for ``campaign``; returns how many occurrences were added."""
    if campaign.kind == "broadcast":
        exists = session.scalar(sa.select(sa.func.count()).select_from(Occurrence).where(
            Occurrence.campaign_id == campaign.id))
        return 0 if exists else store(session, campaign, tenant,
                                      broadcast_plan(session, campaign), now)
    if campaign.kind != "collection":
        return 0          # appointments plan their reminders when they are booked
    after = max(campaign.planned_until or now, now - CATCH_UP)
    until = now + HORIZON
    added = store(session, campaign, tenant, collection_plan(session, campaign, after, until), now)
    campaign.planned_until = until
    return added


def replan(session: Session, campaign: Campaign, tenant: Tenant | None, now: dt.datetime) -> int:
    """Forget occurrences not yet started and due later, and plan again (after a change).

    An occurrence already sending, or due now, is left alone: it goes out as it is.
    """
    doomed = sa.delete(Occurrence).where(
        Occurrence.campaign_id == campaign.id, Occurrence.status == "pending",
        Occurrence.cursor.is_(None), Occurrence.requested == 0, Occurrence.due_at > now,
        Occurrence.appointment_id.is_(None))
    session.execute(doomed)
    if campaign.kind == "collection":
        campaign.planned_until = None
    return plan(session, campaign, tenant, now)


def campaigns_to_plan(session: Session, now: dt.datetime, limit: int = 100) -> list[str]:
    """Collection campaigns whose planned horizon is running out."""
    return list(session.scalars(sa.select(Campaign.id).where(
        Campaign.kind == "collection", Campaign.status == "scheduled",
        sa.or_(Campaign.planned_until.is_(None),
               Campaign.planned_until < now + HORIZON - REPLAN_EVERY)).limit(limit)))


def capacity_report(session: Session, campaign: Campaign, tenant: Tenant | None) -> dict | None:
    """The busiest moment among the campaign's pending occurrences, as setup numbers."""
    groups: dict[dt.datetime, list] = defaultdict(list)
    for o in session.scalars(sa.select(Occurrence).where(
            Occurrence.campaign_id == campaign.id, Occurrence.status == "pending",
            Occurrence.appointment_id.is_(None))):
        groups[o.nominal_at or o.due_at].append(o)
    if not groups:
        return None
    nominal, group = max(groups.items(), key=lambda kv: (sum(o.audience_size for o in kv[1]),
                                                         -kv[0].timestamp()))
    recipients = sum(o.audience_size for o in group)
    mix = audience_languages(session, campaign)
    slot = slot_for(campaign, tenant, nominal, recipients, mix)
    report = slot.report(recipients, message_fragments(campaign, mix), tenant_capacity(tenant))
    report["busiest"] = {"scheduled_at": nominal.isoformat(),
                         "occurrences": sorted(o.occurrence_key for o in group)}
    return report


def audience_languages(session: Session, campaign: Campaign, extra: dict | None = None
                       ) -> dict[str, int]:
    """How many of a subscriber campaign's audience read Welsh, English, or are unknown."""
    languages = {"cy": 0, "en": 0, "unknown": 0}
    for lang, count in session.execute(
            sa.select(Subscriber.language, sa.func.count()).where(*audience.conditions(
                campaign.tenant_id, campaign.channel, campaign.audience or {}, extra or {}))
            .group_by(Subscriber.language)):
        languages[lang or "unknown"] += count
    return languages
