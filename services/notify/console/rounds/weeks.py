"""The next eight weeks as a calendar: weeks from Monday, each day with its collections.

Built from the scheduler's rounds (``GET /api/rounds?until=``), whose ``upcoming`` dates
already carry the exception dates and the moves (``moved_from``): this only lays them
out, so the calendar and the reminders can never disagree.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

WEEKS = 8


@dataclass
class Collection:
    round: str
    name: str
    moved_from: dt.date | None = None


@dataclass
class Day:
    date: dt.date
    today: bool = False
    past: bool = False
    collections: list[Collection] = field(default_factory=list)


@dataclass
class Week:
    monday: dt.date
    days: list[Day]

    @property
    def busy(self) -> bool:
        return any(d.collections for d in self.days)


def last_day(today: dt.date, weeks: int = WEEKS) -> dt.date:
    """The Sunday that ends the calendar that starts in ``today``'s week."""
    monday = today - dt.timedelta(days=today.weekday())
    return monday + dt.timedelta(days=7 * weeks - 1)


def calendar(rounds: list[dict], today: dt.date, weeks: int = WEEKS) -> list[Week]:
    """``weeks`` weeks from the Monday of ``today``'s week; collections on ``today`` and
    after (a day already gone shows none: the page is about what is coming)."""
    monday = today - dt.timedelta(days=today.weekday())
    days = {monday + dt.timedelta(days=n): Day(monday + dt.timedelta(days=n))
            for n in range(7 * weeks)}
    for day in days.values():
        day.today = day.date == today
        day.past = day.date < today
    for r in rounds:
        for item in r.get("upcoming") or []:
            when = dt.date.fromisoformat(item["date"])
            if when in days and when >= today:
                moved = item.get("moved_from")
                days[when].collections.append(Collection(
                    r["code"], r.get("name") or r["code"],
                    dt.date.fromisoformat(moved) if moved else None))
    for day in days.values():
        day.collections.sort(key=lambda c: c.round)
    ordered = [days[k] for k in sorted(days)]
    return [Week(ordered[i].date, ordered[i:i + 7]) for i in range(0, len(ordered), 7)]


def changes(r: dict) -> list[dict]:
    """A round's holiday changes, for the page: each move (from, to or None) and each
    exception date, in date order."""
    out = [{"from": dt.date.fromisoformat(m["from"]),
            "to": dt.date.fromisoformat(m["to"]) if m.get("to") else None}
           for m in r.get("moves") or []]
    out += [{"from": dt.date.fromisoformat(d), "to": None} for d in r.get("exdates") or []]
    return sorted(out, key=lambda c: c["from"])
