"""Collection rounds: a council's calendar of who is collected when.

A round's ``code`` is the value of its households' ``round`` attribute, so the
audience of a round's reminder is "subscribers whose round is A".  Changing a
round (its rule, exception dates, moves) plans the tenant's collection
campaigns again, so a Christmas change loaded in November moves the
reminders not yet sent.  :func:`next_collection` answers "when is my next
collection?" for the inbound service.
"""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.scheduler import planner
from services.scheduler.models import Campaign, Round, Subscriber
from services.scheduler.recurrence import Calendar, RuleError, check_rule, local_date
from shared import pii
from shared.errors import NotFound, ValidationError
from shared.http import iso
from shared.tenancy import Tenant

UPCOMING = 6
UNTIL_DAYS = 400


def calendar(r: Round) -> Calendar:
    return Calendar.of(r.rrule, r.start, r.exdates or [], r.moves or [])


def find(session: Session, tenant_id: str, code: str) -> Round:
    found = session.scalars(sa.select(Round).where(Round.tenant_id == tenant_id,
                                                   Round.code == code)).first()
    if found is None:
        raise NotFound()
    return found


def upsert(session: Session, tenant_id: str, args: dict, now: dt.datetime) -> tuple[Round, bool]:
    """Create a round, or replace the one with this code; (round, created)."""
    existing = session.scalars(sa.select(Round).where(
        Round.tenant_id == tenant_id, Round.code == args["code"])).first()
    created = existing is None
    r = existing or Round(id=str(uuid.uuid4()), tenant_id=tenant_id, code=args["code"],
                          created_at=now)
    r.name = args.get("name") or r.name or args["code"]
    r.rrule, r.start = args["rrule"], args["start"]
    r.exdates = [d.isoformat() for d in args.get("exdates", [])]
    r.moves = args.get("moves", [])
    r.description = args.get("description") or {}
    r.personalisation = args.get("personalisation") or {}
    r.updated_at = now
    if created:
        session.add(r)
    session.flush()
    replan_for(session, tenant_id, now)
    return r, created


def change(session: Session, r: Round, args: dict, now: dt.datetime) -> None:
    """A PATCH: only the given fields; the rule is checked against the stored start."""
    rule, start = args.get("rrule", r.rrule), args.get("start", r.start)
    if "rrule" in args or "start" in args:
        try:
            check_rule(rule, start)
        except RuleError as exc:
            raise ValidationError(f"rrule {exc}") from exc
    r.rrule, r.start = rule, start
    if "exdates" in args:
        r.exdates = [d.isoformat() for d in args["exdates"]]
    for name in ("moves", "description", "personalisation", "name"):
        if name in args and args[name] is not None:
            setattr(r, name, args[name])
    r.updated_at = now
    session.flush()
    replan_for(session, r.tenant_id, now)


def apply_changes(session: Session, tenant_id: str, changes: list[dict], now: dt.datetime
                  ) -> dict:
    """Load a holiday calendar: each collection due ``from`` goes ``to`` (None: none that day),
    in every round that collects on ``from`` (or the rounds named)."""
    rounds = list(session.scalars(sa.select(Round).where(Round.tenant_id == tenant_id)
                                  .order_by(Round.code)))
    applied, unmatched = [], []
    for index, change_ in enumerate(changes):
        frm, to = change_["from_"], change_["to"]
        hits = []
        for r in rounds:
            if change_.get("rounds") and r.code not in change_["rounds"]:
                continue
            if frm in set(calendar(r).rule_dates(frm, frm)):
                moves = [m for m in (r.moves or []) if m["from"] != frm.isoformat()]
                r.moves = [*moves, {"from": frm.isoformat(), "to": to.isoformat() if to else None}]
                r.updated_at = now
                hits.append(r.code)
        if hits:
            applied.append({"index": index, "from": frm.isoformat(),
                            "to": to.isoformat() if to else None, "rounds": hits})
        else:
            unmatched.append({"index": index, "reason": f"no round collects on {frm.isoformat()}"})
    session.flush()
    replan_for(session, tenant_id, now)
    return {"applied": applied, "errors": unmatched}


def replan_for(session: Session, tenant_id: str, now: dt.datetime) -> None:
    """Plan the tenant's collection campaigns again after a calendar change."""
    tenant = session.get(Tenant, tenant_id)
    for campaign in session.scalars(sa.select(Campaign).where(
            Campaign.tenant_id == tenant_id, Campaign.kind == "collection",
            Campaign.status.in_(("scheduled", "paused")))):
        planner.replan(session, campaign, tenant, now)


def as_json(r: Round, today: dt.date, until: dt.date | None = None) -> dict:
    """A round as the API shows it: ``upcoming`` holds the next UPCOMING dates or, with
    ``until``, every date up to it (at most UNTIL_DAYS ahead: a calendar view)."""
    cal = calendar(r)
    upcoming = []
    first = max(today, r.start)
    if until is not None:
        last = min(until, today + dt.timedelta(days=UNTIL_DAYS))
        found = cal.dates(first, last) if last >= first else []
    else:
        found = cal.dates(first, first + dt.timedelta(days=400))[:UPCOMING]
    for day, moved_from in found:
        upcoming.append({"date": day.isoformat(),
                         "moved_from": moved_from.isoformat() if moved_from else None})
    return {"id": r.id, "code": r.code, "name": r.name, "rrule": r.rrule,
            "start": r.start.isoformat(), "exdates": r.exdates or [], "moves": r.moves or [],
            "description": r.description or {}, "personalisation": r.personalisation or {},
            "upcoming": upcoming,
            "warnings": [f"moves: {d.isoformat()} is not a collection date of round {r.code}"
                         for d in cal.unused_moves(r.start, today + dt.timedelta(days=730))],
            "created_at": iso(r.created_at), "updated_at": iso(r.updated_at)}


def next_collection(session: Session, tenant_id: str, phone: str, now: dt.datetime) -> dict:
    """The answer to "when is my next collection?" for a subscriber's number (404 if unknown)."""
    sub = session.scalars(sa.select(Subscriber).where(
        Subscriber.tenant_id == tenant_id,
        Subscriber.phone_hash == pii.lookup_hash(session, phone))).first()
    if sub is None:
        raise NotFound()
    code = (sub.attributes or {}).get("round")
    r = None if code is None else session.scalars(sa.select(Round).where(
        Round.tenant_id == tenant_id, Round.code == str(code))).first()
    day = calendar(r).next_date(local_date(now)) if r is not None else None
    if day is None:
        return {"phone": phone, "next_collection": None}
    return {"phone": phone, "next_collection": {
        "date": day.isoformat(), "round": r.code,
        "description": {"cy": (r.description or {}).get("cy", ""),
                        "en": (r.description or {}).get("en", "")}}}
