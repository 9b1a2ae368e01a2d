"""Capacity-aware timing: when an occurrence must start to finish inside its window.

A provider sender takes about 10 SMS segments a second, so a tenant's rate is
``segments_per_second x senders`` (the tenant's ``capacity`` setting) and an
occurrence needs ``recipients x fragments / rate`` seconds.  Its window is the
campaign's sending window on the day (``{"start": "16:00", "end": "21:00"}``,
Europe/London) or, without one, from the scheduled time on; a non-urgent SMS
window also ends where quiet hours begin.  :func:`slot` starts an occurrence at
its scheduled time when it fits, earlier (never before the window opens) when
it does not, and spaces the sends so they finish at the window's end.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from services.scheduler.recurrence import LONDON, QuietHours, local_instant, parse_time

DEFAULT_RATE = {"segments_per_second": 10, "senders": 1}
# which of notify's counts a recipient's recorded language costs: unknown gets both
COUNT_FOR = {"cy": "cy", "en": "en", "unknown": "cy+en"}


def segments(languages: dict[str, int], counts: dict[str, int] | None, fallback: int) -> int:
    """SMS segments an audience of ``languages`` (``{"cy", "en", "unknown"}`` recipients)
    costs: each language's real count from the template (notify's ``counts``), or, where
    that is not known, the team's ``fallback`` figure (twice for a bilingual text)."""
    if counts:
        return sum(n * counts[COUNT_FOR[lang]] for lang, n in languages.items() if n)
    fallback = max(fallback, 1)
    return sum(n * (2 * fallback if lang == "unknown" else fallback)
               for lang, n in languages.items() if n)


def fragments_per_message(counts: dict[str, int] | None, fallback: int,
                          languages: dict[str, int] | None = None) -> float:
    """What one message costs on average, for timing: the audience's mix where it is
    known, else the dearest language (so a campaign starts early enough, never late)."""
    if not counts:
        return float(max(fallback, 1))
    if languages and sum(languages.values()):
        return segments(languages, counts, fallback) / sum(languages.values())
    return float(max(counts.values()))


@dataclass(frozen=True)
class Capacity:
    segments_per_second: float
    senders: int

    @classmethod
    def of(cls, setting) -> Capacity:
        value = setting if isinstance(setting, dict) else DEFAULT_RATE
        try:
            sps = float(value.get("segments_per_second", 10))
            senders = int(value.get("senders", 1))
        except (TypeError, ValueError):
            sps, senders = 10.0, 1
        return cls(max(sps, 0.1), max(senders, 1))

    @property
    def rate(self) -> float:
        """Segments a second across every sender."""
        return self.segments_per_second * self.senders

    def spacing(self, fragments: float) -> float:
        """Seconds between two sends of a ``fragments``-segment message (an audience's mean)."""
        return max(fragments, 1) / self.rate


@dataclass(frozen=True)
class Slot:
    """When an occurrence starts and how its sends are spread."""

    start: dt.datetime                 # the first send; the ticker emits from here
    spacing: float                     # seconds between sends
    needed: float                      # seconds the whole audience takes
    window_start: dt.datetime
    window_end: dt.datetime | None     # None: no end (no window, no quiet hours)
    moved: str | None                  # why start is not the scheduled time

    @property
    def available(self) -> float | None:
        if self.window_end is None:
            return None
        return max(0.0, (self.window_end - self.window_start).total_seconds())

    @property
    def fits(self) -> bool:
        return self.window_end is None or self.start + dt.timedelta(seconds=self.needed) \
            <= self.window_end + dt.timedelta(seconds=1)

    def report(self, recipients: int, fragments: float, capacity: Capacity) -> dict:
        """The numbers a service team sees at setup (``fragments``: a message's mean)."""
        shown = round(fragments, 2) if fragments != int(fragments) else int(fragments)
        out = {"fits": self.fits, "recipients": recipients, "fragments": shown,
               "segments": math.ceil(recipients * max(fragments, 1)),
               "segments_per_second": capacity.segments_per_second,
               "senders": capacity.senders, "needed_seconds": math.ceil(self.needed),
               "available_seconds": None if self.available is None else int(self.available),
               "starts_at": _local(self.start),
               "window": {"start": _local(self.window_start),
                          "end": _local(self.window_end) if self.window_end else None}}
        if not self.fits:
            out["message"] = (
                f"{recipients} recipients x {shown} fragments at "
                f"{capacity.rate:g} segments/s need {math.ceil(self.needed)} s but the window "
                f"has {int(self.available or 0)} s: add senders, widen the window or cut the "
                "message")
        return out


def window(scheduled: dt.datetime, campaign_window: dict | None, quiet: QuietHours | None,
           urgent: bool) -> tuple[dt.datetime, dt.datetime | None]:
    """The span an occurrence scheduled at ``scheduled`` may send in."""
    day = scheduled.astimezone(LONDON).date()
    start, end = scheduled, None
    if campaign_window:
        start = local_instant(day, parse_time(campaign_window["start"]))
        end = local_instant(day, parse_time(campaign_window["end"]))
        if end <= start:                       # "18:00"-"02:00" ends the next day
            end = local_instant(day + dt.timedelta(days=1), parse_time(campaign_window["end"]))
    if quiet is not None and not urgent:
        quiet_from = quiet.start_before(min(start, scheduled))
        end = quiet_from if end is None else min(end, quiet_from)
    return start, end


def slot(scheduled: dt.datetime, recipients: int, fragments: float, capacity: Capacity, *,
         campaign_window: dict | None = None, quiet: QuietHours | None = None,
         urgent: bool = False) -> Slot:
    """Start and spacing for an occurrence of ``recipients`` scheduled at ``scheduled``."""
    spacing = capacity.spacing(fragments)
    needed = recipients * spacing
    w_start, w_end = window(scheduled, campaign_window, quiet, urgent)
    start, moved = max(scheduled, w_start), None
    if start > scheduled:
        moved = f"the sending window opens at {_local(w_start)}"
    if w_end is not None and start + dt.timedelta(seconds=needed) > w_end:
        earlier = max(w_start, w_end - dt.timedelta(seconds=needed))
        if earlier < start:
            start, moved = earlier, (f"started early to finish by {_local(w_end)} "
                                     f"({math.ceil(needed)} s of sending)")
    if quiet is not None and not urgent and quiet.contains(start):
        start, moved = quiet.next_end(start), f"quiet hours {quiet.label()}"
    return Slot(start, spacing, needed, min(w_start, start), w_end, moved)


def _local(when: dt.datetime) -> str:
    return when.astimezone(LONDON).isoformat(timespec="minutes")
