"""Calendar rules, in Europe/London: collection dates, reminder times, quiet hours.

Pure functions, no database.  Collection dates are *dates*: an RFC 5545 rule
(python-dateutil's ``rrulestr``) is expanded on naive midnights, so a clock
change can never add or remove a collection.  Only then is a reminder's wall
time ("18:00 the day before") turned into an instant with ``zoneinfo``, which
knows that 18:00 on the last Saturday of March is 17:00 UTC and on the last
Saturday of October 18:00 UTC.  Occurrences are keyed by the collection date,
never by the instant, so nothing can be sent twice across a change.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

from shared.calendar_words import DAYS, MONTHS

LONDON = ZoneInfo("Europe/London")
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Collections happen on days: a rule that recurs by the hour is a mistake.
DAY_FREQUENCIES = (DAILY, WEEKLY, MONTHLY, YEARLY)
TIME_PARTS = re.compile(r"\bBY(HOUR|MINUTE|SECOND)=", re.I)
# How far a rule is searched for its next date (a rule may never occur again).
SEARCH_YEARS = 3
# dateutil walks a rule that can never match (FREQ=DAILY;INTERVAL=7;BYDAY=MO
# from a Tuesday) period by period to the year 9999, which takes a minute, so
# a new rule must show its first date within this many seconds.
PROBE_SECONDS = 1.0



class RuleError(ValueError):
    """Why a recurrence rule cannot be used, in words a service team can act on."""


def parse_time(text: str) -> dt.time:
    """``"18:00"`` as a time; raises ValueError."""
    match = HHMM.match(text or "")
    if not match:
        raise ValueError("must be a 24-hour time HH:MM, such as 18:00")
    return dt.time(int(match[1]), int(match[2]))


def parse_rule(text: str, start: dt.date) -> rrule:
    """An RFC 5545 RRULE (with or without ``RRULE:``) starting on ``start``."""
    body = (text or "").strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body or "\n" in body or "DTSTART" in body.upper():
        raise RuleError("must be one RRULE line, such as FREQ=WEEKLY;INTERVAL=2;BYDAY=TU "
                        "(the first date goes in start)")
    if TIME_PARTS.search(body):
        raise RuleError("must recur on dates: BYHOUR, BYMINUTE and BYSECOND are not allowed")
    try:
        rule = rrulestr(body, dtstart=dt.datetime.combine(start, dt.time()))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise RuleError(f"is not a valid RFC 5545 rule: {exc}") from exc
    if not isinstance(rule, rrule) or rule._freq not in DAY_FREQUENCIES:
        raise RuleError("must recur daily, weekly, monthly or yearly")
    return rule


def check_rule(text: str, start: dt.date) -> rrule:
    """:func:`parse_rule`, and the rule must have a date within SEARCH_YEARS of ``start``."""
    rule = parse_rule(text, start)
    found: list = []
    limit = dt.datetime.combine(start + dt.timedelta(days=366 * SEARCH_YEARS), dt.time())
    # a daemon thread: a rule that never matches is abandoned, not waited for
    probe = threading.Thread(target=lambda: found.append(next(iter(rule), None)), daemon=True)
    probe.start()
    probe.join(PROBE_SECONDS)
    if not found or found[0] is None or found[0] > limit:
        raise RuleError(f"has no date within {SEARCH_YEARS} years of start")
    return rule


@dataclass(frozen=True)
class Calendar:
    """A round's collection dates: the rule, less exception dates, with moves applied."""

    rule: rrule
    exdates: frozenset[dt.date]
    moves: dict[dt.date, dt.date | None]       # from -> to (None: no collection)

    @classmethod
    def of(cls, rule_text: str, start: dt.date, exdates=(), moves=()) -> Calendar:
        return cls(parse_rule(rule_text, start), frozenset(_date(d) for d in exdates),
                   {_date(m["from"]): _date(m["to"]) if m.get("to") else None for m in moves})

    def rule_dates(self, first: dt.date, last: dt.date) -> Iterator[dt.date]:
        """The rule's own dates in [first, last] (before exceptions and moves)."""
        end = dt.datetime.combine(last, dt.time())
        # COUNT already bounds a rule (and dateutil refuses COUNT with UNTIL)
        rule = self.rule if self.rule._count else self.rule.replace(
            until=min(end, self.rule._until) if self.rule._until else end)
        for when in rule.xafter(dt.datetime.combine(first, dt.time()), inc=True):
            if when > end:
                return
            yield when.date()

    def dates(self, first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date | None]]:
        """(collection date, the rule date it was moved from or None) in [first, last], sorted.

        A move whose rule date lies outside the range still lands inside it, so
        the range is widened by the longest move when the rule is read.
        """
        reach = max((abs((to - frm).days) for frm, to in self.moves.items() if to), default=0)
        wide = (first - dt.timedelta(days=reach), last + dt.timedelta(days=reach))
        found: dict[dt.date, dt.date | None] = {}
        for day in self.rule_dates(*wide):
            if day in self.exdates:
                continue
            if day in self.moves:
                target = self.moves[day]
                if target is not None and first <= target <= last:
                    found.setdefault(target, day)
            elif first <= day <= last:
                found.setdefault(day, None)
        return sorted(found.items())

    def next_date(self, today: dt.date) -> dt.date | None:
        """The first collection on or after ``today`` (within SEARCH_YEARS)."""
        last = today + dt.timedelta(days=366 * SEARCH_YEARS)
        step = dt.timedelta(days=62)
        first = today
        while first <= last:
            found = self.dates(first, min(first + step, last))
            if found:
                return found[0][0]
            first += step + dt.timedelta(days=1)
        return None

    def unused_moves(self, first: dt.date, last: dt.date) -> list[dt.date]:
        """Moves whose ``from`` is not one of the rule's dates (a likely typo)."""
        rule_days = set(self.rule_dates(first, last))
        return sorted(d for d in self.moves if first <= d <= last and d not in rule_days)


def _date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def local_instant(day: dt.date, at: dt.time) -> dt.datetime:
    """Wall time ``at`` on ``day`` in Europe/London, as a UTC instant.

    A wall time that does not exist (01:30 on the last Sunday of March) is
    read with the offset before the change, i.e. it goes out an hour later
    (02:30 BST); one that happens twice (01:30 on the last Sunday of October)
    is the first of the two.  Either way it happens once.
    """
    return dt.datetime.combine(day, at, tzinfo=LONDON).astimezone(dt.UTC)


def reminder_at(collection: dt.date, days_before: int, at: dt.time) -> dt.datetime:
    """When to remind of a collection on ``collection``: ``at`` local, ``days_before`` earlier."""
    return local_instant(collection - dt.timedelta(days=days_before), at)


def shift_local(when: dt.datetime, days: int) -> dt.datetime:
    """The same wall-clock time ``days`` earlier (a 09:00 appointment's 09:00 a week before)."""
    local = when.astimezone(LONDON)
    return local_instant(local.date() - dt.timedelta(days=days), local.time().replace(tzinfo=None))


def local_date(when: dt.datetime) -> dt.date:
    return when.astimezone(LONDON).date()


def describe_date(day: dt.date) -> dict[str, str]:
    """Personalisation for a date in both languages: day names and '31 March'."""
    out = {"collection_date": day.isoformat()}
    for lang in ("en", "cy"):
        weekday = DAYS[lang][day.weekday()]
        out[f"collection_day_{lang}"] = weekday
        out[f"collection_date_{lang}"] = f"{weekday} {day.day} {MONTHS[lang][day.month - 1]}"
    return out


# -- quiet hours ----------------------------------------------------------------

@dataclass(frozen=True)
class QuietHours:
    """A nightly span (21:00-08:00 by default) in which non-urgent SMS wait."""

    start: dt.time
    end: dt.time

    @classmethod
    def of(cls, setting) -> QuietHours | None:
        """From the tenant's ``quiet_hours`` setting; None (or a bad value) means none."""
        if not setting:
            return None
        try:
            return cls(parse_time(setting["start"]), parse_time(setting["end"]))
        except (KeyError, TypeError, ValueError):
            return None

    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, when: dt.datetime) -> bool:
        t = when.astimezone(LONDON).time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def next_end(self, when: dt.datetime) -> dt.datetime:
        """The first instant at or after ``when`` outside quiet hours (``when`` if not quiet)."""
        if not self.contains(when):
            return when
        day = local_date(when)
        for offset in (0, 1):
            candidate = local_instant(day + dt.timedelta(days=offset), self.end)
            if candidate > when:
                return candidate
        return when   # unreachable for a well-formed span

    def start_before(self, when: dt.datetime) -> dt.datetime:
        """The next start of quiet hours at or after ``when``."""
        day = local_date(when)
        for offset in (0, 1):
            candidate = local_instant(day + dt.timedelta(days=offset), self.start)
            if candidate >= when:
                return candidate
        return local_instant(day + dt.timedelta(days=2), self.start)
