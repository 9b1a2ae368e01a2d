"""A round's RFC 5545 rule in words, in Welsh and in English: "every other Tuesday",
"bob yn ail ddydd Mawrth".

This is grammar, not a phrase list, so it is code rather than catalogue entries: Welsh
mutates the word after some words ("bob yn ail **dd**ydd Mawrth", "ar **dd**ydd
Llun"), counts weeks with feminine numerals ("bob **tair** wythnos") and puts most
ordinals after the noun ("y dydd Mawrth **cyntaf**") but "ail", "trydydd" and
"pedwerydd" before it.  A gettext entry cannot choose between those forms; a function
per language can.  A rule these functions do not recognise is shown as the rule itself,
never guessed at.
"""
from __future__ import annotations

import datetime as dt

from shared.calendar_words import DAYS, MONTHS

CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
EN_COUNT = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
# feminine cardinals (wythnos is feminine): "bob tair wythnos", "bob pedair wythnos"
CY_WEEKS = {3: "tair", 4: "pedair", 5: "pum", 6: "chwe", 7: "saith", 8: "wyth", 9: "naw",
            10: "deg"}
EN_ORDINAL = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}


def soft(word: str) -> str:
    """The soft mutation of a Welsh word's first letter (only what day names need, and more)."""
    pairs = (("ll", "l"), ("rh", "r"), ("c", "g"), ("p", "b"), ("t", "d"), ("g", ""),
             ("b", "f"), ("d", "dd"), ("m", "f"))
    lower = word.lower()
    for radical, mutated in pairs:
        if lower.startswith(radical):
            return mutated + word[len(radical):]
    return word


def parse(rule: str) -> dict[str, str]:
    body = (rule or "").strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    parts: dict[str, str] = {}
    for item in body.split(";"):
        key, _, value = item.partition("=")
        if key.strip():
            parts[key.strip().upper()] = value.strip().upper()
    return parts


def _days(value: str | None, start: dt.date) -> list[tuple[int | None, int]] | None:
    """BYDAY as (ordinal or None, weekday) pairs; None when it is not understood."""
    if not value:
        return [(None, start.weekday())]
    out = []
    for item in value.split(","):
        code, number = item[-2:], item[:-2]
        if code not in CODES:
            return None
        try:
            ordinal = int(number) if number else None
        except ValueError:
            return None
        out.append((ordinal, CODES.index(code)))
    return out


def _join(items: list[str], lang: str) -> str:
    if len(items) == 1:
        return items[0]
    word = " and " if lang == "en" else " a "
    return ", ".join(items[:-1]) + word + items[-1]


def _until(parts: dict[str, str], lang: str) -> str:
    if "UNTIL" in parts:
        try:
            day = dt.date(int(parts["UNTIL"][:4]), int(parts["UNTIL"][4:6]),
                          int(parts["UNTIL"][6:8]))
        except ValueError:
            return ""
        text = f"{day.day} {MONTHS[lang][day.month - 1]} {day.year}"
        return f", until {text}" if lang == "en" else f", tan {text}"
    if "COUNT" in parts and parts["COUNT"].isdigit():
        n = int(parts["COUNT"])
        return f" ({n} times)" if lang == "en" else f" ({n} gwaith)"
    return ""


def describe(rule: str, start: dt.date, lang: str) -> str:
    """``rule`` (an RRULE, first date ``start``) in words in ``lang`` ("cy" or "en")."""
    lang = "cy" if lang == "cy" else "en"
    parts = parse(rule)
    try:
        interval = int(parts.get("INTERVAL", "1") or "1")
    except ValueError:
        interval = 0
    known = {"FREQ", "INTERVAL", "BYDAY", "UNTIL", "COUNT", "WKST", "BYMONTHDAY", "BYSETPOS"}
    words = None
    if interval >= 1 and set(parts) <= known:
        freq = parts.get("FREQ")
        if freq == "WEEKLY" and "BYMONTHDAY" not in parts and "BYSETPOS" not in parts:
            days = _days(parts.get("BYDAY"), start)
            if days and all(o is None for o, _ in days):
                words = (_weekly_en if lang == "en" else _weekly_cy)(
                    interval, [d for _, d in days])
        elif freq == "DAILY" and not ({"BYDAY", "BYMONTHDAY", "BYSETPOS"} & set(parts)):
            words = _daily(interval, lang)
        elif freq == "MONTHLY":
            words = _monthly(parts, interval, start, lang)
    if words is None:
        return f"by the rule {rule}" if lang == "en" else f"yn ôl y rheol {rule}"
    return words + _until(parts, lang)


def _weekly_en(interval: int, days: list[int]) -> str:
    names = _join([DAYS["en"][d] for d in sorted(days)], "en")
    if interval == 1:
        return f"every {names}"
    if interval == 2:
        return f"every other {names}" if len(days) == 1 else f"every other week on {names}"
    return f"every {EN_COUNT.get(interval, str(interval))} weeks on {names}"


def _weekly_cy(interval: int, days: list[int]) -> str:
    names = [DAYS["cy"][d] for d in sorted(days)]
    listed = _join(names, "cy")
    if interval == 1:
        return f"bob {listed}"
    if interval == 2:
        if len(days) == 1:
            return f"bob yn ail {soft(names[0])}"
        return f"bob yn ail wythnos ar {_join([soft(names[0]), *names[1:]], 'cy')}"
    count = CY_WEEKS.get(interval, str(interval))
    return f"bob {count} wythnos ar {_join([soft(names[0]), *names[1:]], 'cy')}"


def _daily(interval: int, lang: str) -> str:
    if lang == "en":
        return "every day" if interval == 1 else (
            "every other day" if interval == 2 else f"every {interval} days")
    return "bob dydd" if interval == 1 else (
        "bob yn ail ddiwrnod" if interval == 2 else f"bob {interval} diwrnod")


def _every_month(interval: int, lang: str) -> str:
    if lang == "en":
        return "every month" if interval == 1 else (
            "every other month" if interval == 2 else f"every {interval} months")
    return "bob mis" if interval == 1 else (
        "bob yn ail fis" if interval == 2 else f"bob {interval} mis")


def _monthly(parts: dict[str, str], interval: int, start: dt.date, lang: str) -> str | None:
    months = _every_month(interval, lang)
    if "BYMONTHDAY" in parts:
        if "BYDAY" in parts or "BYSETPOS" in parts:
            return None
        try:
            day = int(parts["BYMONTHDAY"])
        except ValueError:
            return None
        if lang == "en":
            return f"on day {day} of {months}" if day > 0 else (
                f"on the last day of {months}" if day == -1 else None)
        return f"ar ddiwrnod {day} o {months}" if day > 0 else (
            f"ar ddiwrnod olaf {months}" if day == -1 else None)
    days = _days(parts.get("BYDAY"), start)
    if not days or len(days) != 1:
        return None
    ordinal, weekday = days[0]
    if "BYSETPOS" in parts:
        if ordinal is not None:
            return None
        try:
            ordinal = int(parts["BYSETPOS"])
        except ValueError:
            return None
    if ordinal is None:
        if "BYDAY" in parts:
            return None      # every Tuesday of a month: a weekly rule said oddly
        return _monthly({"BYMONTHDAY": str(start.day)}, interval, start, lang)
    if ordinal not in EN_ORDINAL:
        return None
    if lang == "en":
        return f"the {EN_ORDINAL[ordinal]} {DAYS['en'][weekday]} of {months}"
    name = DAYS["cy"][weekday]
    phrase = {1: f"y {name} cyntaf", 2: f"yr ail {soft(name)}", 3: f"y trydydd {name}",
              4: f"y pedwerydd {name}", 5: f"y pumed {name}", -1: f"y {name} olaf"}[ordinal]
    return f"{phrase} o {months}"
