"""Quiet hours: a non-urgent text due at night waits for the morning, never dropped.

A tenant's window is local wall-clock time in Europe/London (default 21:00-08:00,
``quiet_hours: null`` for none).  Everything here but :func:`release_due` is a
pure function of a UTC instant, so the DST changes and windows that cross
midnight are table-tested without a clock.

A deferred notification is stored with status ``deferred`` and ``not_before`` =
the end of the quiet hours; :func:`release_due` (called from the dispatcher's
loop) turns the due ones back into ``created`` for the dispatcher to claim.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify.models import Notification

LONDON = ZoneInfo("Europe/London")
DEFAULT = {"start": "21:00", "end": "08:00"}


@dataclass(frozen=True)
class Window:
    """Quiet from ``start`` to ``end``, local time; crosses midnight when start > end."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, config: dict | None) -> Window | None:
        """``{"start": "21:00", "end": "08:00"}`` as a window; ``None`` (or start == end) is none."""
        if not config:
            return None
        start, end = (dt.time.fromisoformat(config[k]) for k in ("start", "end"))
        return None if start == end else cls(start, end)

    def contains(self, local: dt.time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def is_quiet(moment: dt.datetime, window: Window | None, tz: ZoneInfo = LONDON) -> bool:
    """Whether the UTC instant ``moment`` falls inside the quiet hours."""
    if window is None:
        return False
    return window.contains(moment.astimezone(tz).time().replace(tzinfo=None))


def window_end(moment: dt.datetime, window: Window, tz: ZoneInfo = LONDON) -> dt.datetime:
    """The UTC instant the quiet hours holding ``moment`` end (sending may start again).

    A wall-clock end that does not exist on a spring-forward day (01:30, say) is
    read as the same number of minutes past the gap; one that happens twice on
    the autumn day is the first of the two still ahead of ``moment``.
    """
    local = moment.astimezone(tz)
    day = local.date()
    if window.start > window.end and local.time().replace(tzinfo=None) >= window.start:
        day += dt.timedelta(days=1)   # the evening side of a window that crosses midnight
    end = dt.datetime.combine(day, window.end).replace(tzinfo=tz).astimezone(dt.UTC)
    if end <= moment:
        # an end time that happens twice (autumn) and whose first occurrence is past
        end = dt.datetime.combine(day, window.end).replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    return end


def defer_until(window: Window | None, due: dt.datetime, *, channel: str,
                urgent: bool) -> dt.datetime | None:
    """When a message due at ``due`` may go, or ``None`` if it may go when due.

    Only non-urgent text messages wait: email does not wake anyone, and an urgent
    message (a clinic cancelled for tomorrow morning) must not.
    """
    if channel != "sms" or urgent or not is_quiet(due, window):
        return None
    return window_end(due, window)  # type: ignore[arg-type]


def holds(tenant, *, key_type: str, transactional: bool) -> bool:
    """Whether quiet hours apply to this send at all.

    Scheduled work (campaigns, rounds, broadcasts, bulk sends) waits by default.  A v2 API
    send is transactional (a one-time code, a same-evening change) and goes at once, as on
    GOV.UK Notify, unless the tenant turns ``quiet_hours_for_api`` on.  A test key's send
    never leaves the platform, so it never waits.
    """
    if key_type == "test":
        return False
    if transactional:
        return bool(tenant.setting("quiet_hours_for_api"))
    return True


def tenant_window(tenant) -> Window | None:
    """The tenant's quiet hours (its ``quiet_hours`` setting; the default if never set)."""
    config = (tenant.config or {})
    return Window.parse(config["quiet_hours"] if "quiet_hours" in config else DEFAULT)


def release_due(session: Session, now: dt.datetime) -> int:
    """Turn deferred notifications whose quiet hours are over back into ``created``.

    Call it from the dispatcher's loop before claiming; returns how many it released.
    One UPDATE, so two dispatchers running it at once release each row once.
    """
    result = session.execute(
        sa.update(Notification)
        .where(Notification.status == "deferred", Notification.not_before <= now)
        .values(status="created", updated_at=now)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0
