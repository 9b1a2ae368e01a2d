"""Rate limits per API key and daily message limits per tenant, as GOV.UK Notify has them.

Counts live in ``usage_counters`` (fixed windows: a minute per key, a London day
per tenant) and are bumped with one atomic upsert, so the limits hold across
every API process and replica.  Exceeding one answers 429 with ``Retry-After``
and Notify's bodies (``RateLimitError`` / ``TooManyRequestsError``).
"""
from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from services.notify.models import UsageCounter
from shared.db import insert_for
from shared.errors import RateLimitError, TooManyRequestsError

LONDON = ZoneInfo("Europe/London")
DEFAULT_PER_MINUTE = 3000
DEFAULT_PER_DAY = 250_000


def minute_window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The fixed one-minute window holding ``now`` (start, end), in UTC."""
    start = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    return start, start + dt.timedelta(minutes=1)


def day_window(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The London calendar day holding ``now`` (start, end), in UTC: limits reset at
    local midnight, which is 23:00 UTC in summer."""
    day = now.astimezone(LONDON).date()
    start = dt.datetime.combine(day, dt.time()).replace(tzinfo=LONDON)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).replace(tzinfo=LONDON)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def bump(session: Session, scope: str, subject: str, window_start: dt.datetime, by: int,
         ceiling: int | None = None) -> int | None:
    """Add ``by`` to one counter and return its new value, atomically (one upsert).

    With ``ceiling``: only if the new value stays within it; None (and nothing added)
    when it would not.  A first count above the ceiling is the caller's to refuse."""
    table = UsageCounter.__table__
    stmt = insert_for(session, table).values(scope=scope, subject=subject,
                                             window_start=window_start, count=by)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.scope, table.c.subject, table.c.window_start],
        set_={"count": table.c.count + stmt.excluded.count},
        where=None if ceiling is None else table.c.count + stmt.excluded.count <= ceiling,
    ).returning(table.c.count)
    row = session.execute(stmt).first()      # no row: the ceiling held it back
    return None if row is None else int(row[0])


def retry_after(now: dt.datetime, window_end: dt.datetime) -> str:
    return str(max(1, math.ceil((window_end - now).total_seconds())))


def check_request_rate(session: Session, *, key_id: str, key_type: str, per_minute: int | None,
                       now: dt.datetime) -> None:
    """Count one request for this API key; 429 ``RateLimitError`` once past the limit.

    Every key type counts, ``test`` keys included, as on Notify.
    """
    limit = per_minute or DEFAULT_PER_MINUTE
    start, end = minute_window(now)
    if bump(session, "key-minute", key_id, start, 1) > limit:
        raise RateLimitError(
            f"Exceeded rate limit for key type {key_type.upper()} of {limit} requests per 60 "
            "seconds", headers={"Retry-After": retry_after(now, end)})


def take_daily(session: Session, *, tenant_id: str, key_type: str, per_day: int | None,
               count: int, now: dt.datetime) -> None:
    """Count ``count`` messages against today's limit, in the caller's transaction.

    Over the limit it raises 429 ``TooManyRequestsError`` and the caller's
    rollback undoes the count, so refused messages are never counted.  Messages
    sent with a ``test`` key never count (they never leave the platform).
    """
    if key_type == "test" or count <= 0:
        return
    limit = per_day or DEFAULT_PER_DAY
    start, end = day_window(now)
    if bump(session, "tenant-day", tenant_id, start, count) > limit:
        raise TooManyRequestsError(f"Exceeded send limits ({limit}) for today",
                                   headers={"Retry-After": retry_after(now, end)})


def take_daily_if_room(session: Session, *, tenant_id: str, key_type: str, per_day: int | None,
                       count: int, now: dt.datetime) -> bool:
    """Count ``count`` messages against today's limit only if they fit (one conditional
    upsert); 429 ``TooManyRequestsError`` with nothing counted when they do not.

    For a caller that counts in a short transaction of its own before storing (the
    v2 API): the counter's row lock is then never held through the store's commit,
    so one tenant's concurrent sends do not queue behind each other's disk syncs.
    A send that then fails hands its count back with :func:`give_back_daily`.  Answers
    whether anything was counted (``test`` keys never count).
    """
    if key_type == "test" or count <= 0:
        return False
    limit = per_day or DEFAULT_PER_DAY
    start, end = day_window(now)
    refused = TooManyRequestsError(f"Exceeded send limits ({limit}) for today",
                                   headers={"Retry-After": retry_after(now, end)})
    if count > limit or bump(session, "tenant-day", tenant_id, start, count, ceiling=limit) is None:
        raise refused
    return True


def give_back_daily(session: Session, *, tenant_id: str, key_type: str, count: int,
                    now: dt.datetime) -> None:
    """Undo :func:`take_daily_if_room` for messages that were not stored after all."""
    if key_type == "test" or count <= 0:
        return
    start, _ = day_window(now)
    table = UsageCounter.__table__
    session.execute(table.update().where(
        table.c.scope == "tenant-day", table.c.subject == tenant_id,
        table.c.window_start == start, table.c.count >= count).values(count=table.c.count - count))


def remaining_today(session: Session, *, tenant_id: str, per_day: int | None,
                    now: dt.datetime) -> int:
    """How many more messages the tenant may send today (for bulk sends)."""
    limit = per_day or DEFAULT_PER_DAY
    start, _ = day_window(now)
    row = session.get(UsageCounter, ("tenant-day", tenant_id, start))
    return max(0, limit - (row.count if row else 0))
