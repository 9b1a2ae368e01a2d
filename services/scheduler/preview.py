"""Preview and dry run: who the next occurrence would reach, with what, when, at what cost.

Nothing is written and nothing is sent.  The scheduler does not hold
templates (notify does), so each language's size is notify's real fragment count
for the template (``counts``, asked for at preview time, else the one stored when
the campaign was set up): Welsh, English, and both (Welsh first) for a recipient
whose language is unknown.  Only where notify has never answered is the team's
``fragments`` figure used (twice for a bilingual text).  The cost is an estimate at
``price_per_fragment`` (GBP; the default is a typical UK rate, pass your own).
"""
from __future__ import annotations

import datetime as dt
import math

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.scheduler import audience, capacity, planner
from services.scheduler.models import UNFINISHED, Appointment, Campaign, Occurrence, Subscriber
from shared.http import iso
from shared.tenancy import Tenant

DEFAULT_PRICE_PER_FRAGMENT = 0.024


def next_occurrences(session: Session, campaign: Campaign, limit: int) -> list[Occurrence]:
    query = (sa.select(Occurrence).where(Occurrence.campaign_id == campaign.id,
                                         Occurrence.status.in_(UNFINISHED))
             .order_by(Occurrence.due_at, Occurrence.occurrence_key))
    first = session.scalars(query.limit(1)).first()
    if first is None:
        return []
    if campaign.kind == "appointment":
        return list(session.scalars(query.limit(limit)))
    # every occurrence due at the same moment (the rounds of one evening)
    return list(session.scalars(query.where(Occurrence.due_at == first.due_at)))


def dry_run(session: Session, campaign: Campaign, limit: int, price: float | None,
            now: dt.datetime, counts: dict[str, int] | None = None) -> dict:
    """The next occurrence(s) as they would go: a sample of requests and the totals.

    ``counts``: notify's fragment count per language now (None: the stored one)."""
    price = DEFAULT_PRICE_PER_FRAGMENT if price is None else price
    if campaign.channel != "sms":
        price = 0.0
    occurrences = next_occurrences(session, campaign, limit)
    sample: list[dict] = []
    languages = {"cy": 0, "en": 0, "unknown": 0}
    for occ in occurrences:
        if occ.appointment_id:
            _appointment(session, campaign, occ, sample, languages)
            continue
        extra = occ.audience or {}
        for lang, count in session.execute(
                sa.select(Subscriber.language, sa.func.count()).where(*audience.conditions(
                    campaign.tenant_id, campaign.channel, campaign.audience or {}, extra))
                .group_by(Subscriber.language)):
            languages[lang or "unknown"] += count
        if len(sample) < limit:
            subs = session.scalars(audience.eligible(
                campaign.tenant_id, campaign.channel, campaign.audience or {}, extra)
                .limit(limit - len(sample)))
            for n, s in enumerate(subs):
                sample.append(_request(campaign, occ, s.phone if campaign.channel == "sms"
                                       else s.email, s.language,
                                       {**(campaign.personalisation or {}),
                                        **(s.attributes or {}), **(occ.personalisation or {})},
                                       n))
    return _totals(session, campaign, occurrences, sample, languages, price, now,
                   counts or campaign.fragments_by_language)


def _appointment(session, campaign, occ, sample, languages) -> None:
    appt = session.get(Appointment, occ.appointment_id)
    if appt is None or appt.status == "cancelled":
        return
    languages[appt.language or "unknown"] += 1
    sample.append(_request(campaign, occ, appt.phone if campaign.channel == "sms" else appt.email,
                           appt.language, {**(campaign.personalisation or {}),
                                           **(occ.personalisation or {})}, 0))


def _request(campaign: Campaign, occ: Occurrence, recipient, language, personalisation,
             position: int) -> dict:
    not_before = None if occ.send_from is None else occ.send_from + dt.timedelta(
        seconds=(occ.requested + position) * (occ.spacing or 0))
    return {"occurrence_key": occ.occurrence_key, "recipient": recipient,
            "language": language or "cy+en (unknown: both, Welsh first)",
            "template_id": campaign.template_id, "personalisation": personalisation,
            "not_before": iso(not_before)}


def _totals(session, campaign, occurrences, sample, languages, price, now, counts) -> dict:
    sms = campaign.channel == "sms"
    recipients = sum(languages.values())
    segments = capacity.segments(languages, counts, campaign.fragments or 1) if sms else 0
    per_message = capacity.fragments_per_message(counts, campaign.fragments or 1, languages)
    tenant = session.get(Tenant, campaign.tenant_id)
    slot = planner.slot_for(campaign, tenant, occurrences[0].nominal_at or occurrences[0].due_at,
                            recipients, fragments=per_message) if occurrences else None
    return {"campaign_id": campaign.id, "dry_run": True,
            "occurrences": [{"occurrence_key": o.occurrence_key, "due_at": iso(o.due_at),
                             "scheduled_at": iso(o.nominal_at or o.due_at), "note": o.note}
                            for o in occurrences],
            "recipients": recipients, "languages": languages,
            "fragments_per_message": math.ceil(per_message),
            "fragments_by_language": counts if sms else None,
            "fragments_source": ("template" if counts else "campaign") if sms else None,
            "segments": segments,
            "price_per_fragment": price, "estimated_cost": round(segments * price, 2),
            "capacity": slot.report(recipients, per_message, planner.tenant_capacity(tenant))
            if slot else None,
            "sample": sample, "generated_at": iso(now)}
