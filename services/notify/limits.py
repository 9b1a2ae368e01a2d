"""Rate limits per API key and daily message limits per tenant, as GOV.UK Notify has them.

Counts live in ``usage_counters`` (fixed windows: a minute per key, a London day
per tenant) and are bumped with one atomic upsert, so the limits hold across
every API process and replica.  Exceeding one answers 429 with ``Retry-After``
and Notify's bodies (``RateLimitError`` / ``TooManyRequestsError``).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from services.notify.models import UsageCounter
from shared.db import insert_for
from shared.errors import RateLimitError, TooManyRequestsError

log = logging.getLogger(__name__)
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


# -- the API's counters, off the request's transaction ----------------------------------

BLOCK = 50            # the most a process leases from a counter at once
LEASES_KEPT = 10_000  # (counter, subject) pairs a process holds leases for


class LeasedCounters:
    """Counts taken from ``usage_counters`` in leased blocks, so most requests touch no
    database at all.

    A process that has no allowance left for a counter takes a block of it
    (``min(BLOCK, limit // 100)``, at least what it needs) with one conditional upsert
    that never passes the limit; near the limit a block no longer fits and it takes
    exactly what it needs, one upsert per request, as before.  So the counter in the
    database never passes the limit, however many processes count: N processes can
    refuse up to N × (block − 1) early (allowance another process holds), never let one
    more through.  What a process holds when it stops or crashes is lost for that
    window (at most a block per counter per process: under-sending, never over).
    Handing back (a send refused after it was counted) returns the count to the
    process's own lease.  Thread-safe."""

    def __init__(self, db, block: int = BLOCK, kept: int = LEASES_KEPT):
        import threading
        from collections import OrderedDict

        self.db = db
        self.block = block
        self.kept = kept
        self._held: OrderedDict[tuple[str, str], tuple[dt.datetime, int]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, scope: str, subject: str, window_start: dt.datetime, count: int,
             limit: int) -> bool:
        """Take ``count`` from this window's allowance; False (nothing taken) if it is used up."""
        if self._from_lease(scope, subject, window_start, count):
            return True
        if count > limit:
            return False
        block = max(count, min(self.block, limit // 100))
        with self.db.transaction(durable=False) as session:
            got = bump(session, scope, subject, window_start, block, ceiling=limit)
            if got is None and block > count:
                block = count
                got = bump(session, scope, subject, window_start, count, ceiling=limit)
        if got is None:
            return False
        self._add(scope, subject, window_start, block - count)
        return True

    def give_back(self, scope: str, subject: str, window_start: dt.datetime, count: int) -> None:
        self._add(scope, subject, window_start, count)

    def held(self, scope: str, subject: str, window_start: dt.datetime) -> int:
        with self._lock:
            start, left = self._held.get((scope, subject), (None, 0))
        return left if start == window_start else 0

    def _from_lease(self, scope, subject, window_start, count) -> bool:
        with self._lock:
            start, left = self._held.get((scope, subject), (None, 0))
            if start != window_start or left < count:
                return False
            self._held[(scope, subject)] = (start, left - count)
            return True

    def _add(self, scope, subject, window_start, count) -> None:
        with self._lock:
            start, left = self._held.get((scope, subject), (None, 0))
            self._held[(scope, subject)] = (window_start, (left if start == window_start else 0)
                                            + count)
            self._held.move_to_end((scope, subject))
            while len(self._held) > self.kept:
                self._held.popitem(last=False)


class RedisRequestCounter:
    """Requests per key per minute in Redis: ``INCR`` and ``EXPIRE`` in one ``MULTI``
    (one round trip, atomic), exact across every process sharing the Redis and prefix.
    Keys carry the tenant id as a hash tag, so a cluster keeps a tenant's counters on
    one shard."""

    def __init__(self, url: str, prefix: str = "hysbys", client=None):
        import redis

        self.client = client or redis.Redis.from_url(url, socket_timeout=1,
                                                     socket_connect_timeout=1)
        self.prefix = prefix

    def count(self, tenant_id: str, key_id: str, window_start: dt.datetime) -> int:
        name = f"{self.prefix}:limits:{{{tenant_id}}}:key-minute:{key_id}:" \
               f"{int(window_start.timestamp())}"
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, 120)
        requests, _ = pipe.execute()
        return int(requests)


class ApiLimits:
    """The v2 and native APIs' limits: requests per key per minute, messages per tenant
    per day (docs/decisions.md, "API limits off the request's transaction").

    Daily counts are always leased from ``usage_counters`` (:class:`LeasedCounters`),
    the counter bulk sends use too, so the two never add up past the limit.  Requests
    per minute are counted in Redis where ``HYSBYS_REDIS_URL`` is set
    (:class:`RedisRequestCounter`: exact) and by leases otherwise; if Redis cannot be
    reached they fall back to the leases, so an outage of Redis is not one of the API.
    """

    def __init__(self, db, redis_counter: RedisRequestCounter | None = None,
                 leases: LeasedCounters | None = None):
        self.leases = leases or LeasedCounters(db)
        self.redis = redis_counter
        self._warned = False

    @classmethod
    def configured(cls, settings, db) -> ApiLimits:
        redis_counter = (RedisRequestCounter(settings.redis_url, settings.redis_prefix)
                         if settings.redis_url else None)
        return cls(db, redis_counter)

    def count_request(self, *, tenant_id: str, key_id: str, key_type: str,
                      per_minute: int | None, now: dt.datetime) -> None:
        """Count one request for this key; 429 ``RateLimitError`` once past the limit
        (every key type counts, ``test`` keys included, as on Notify)."""
        limit = per_minute or DEFAULT_PER_MINUTE
        start, end = minute_window(now)
        if not self._request_fits(tenant_id, key_id, start, limit):
            raise RateLimitError(
                f"Exceeded rate limit for key type {key_type.upper()} of {limit} requests "
                "per 60 seconds", headers={"Retry-After": retry_after(now, end)})

    def _request_fits(self, tenant_id, key_id, start, limit) -> bool:
        if self.redis is not None:
            import redis

            try:
                return self.redis.count(tenant_id, key_id, start) <= limit
            except redis.RedisError as exc:
                if not self._warned:
                    log.warning("Redis cannot count API requests (%s): counting in the "
                                "database until it can", type(exc).__name__)
                    self._warned = True
        return self.leases.take("key-minute", key_id, start, 1, limit)

    def take_daily(self, *, tenant_id: str, key_type: str, per_day: int | None, count: int,
                   now: dt.datetime) -> bool:
        """Count ``count`` messages against today's limit if they fit; 429
        ``TooManyRequestsError`` with nothing counted if not.  Answers whether anything
        was counted (``test`` keys never count)."""
        if key_type == "test" or count <= 0:
            return False
        limit = per_day or DEFAULT_PER_DAY
        start, end = day_window(now)
        if not self.leases.take("tenant-day", tenant_id, start, count, limit):
            raise TooManyRequestsError(f"Exceeded send limits ({limit}) for today",
                                       headers={"Retry-After": retry_after(now, end)})
        return True

    def give_back_daily(self, *, tenant_id: str, count: int, now: dt.datetime) -> None:
        """Undo :meth:`take_daily` for messages that were not stored after all."""
        self.leases.give_back("tenant-day", tenant_id, day_window(now)[0], count)
