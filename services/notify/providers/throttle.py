"""A throttle per sender: token buckets counting SMS segments.

A Twilio number in the UK takes about 10 segments a second; sending faster only
fills Twilio's own queue, where messages age past their moment (a bin reminder
at 23:00 is no use).  The dispatcher asks before it claims a notification, so a
throttled tenant's rows simply stay ``created`` and the batch goes to others.

Every configured dispatcher asks the same throttle (:class:`RedisThrottle` or
:class:`DatabaseThrottle`, below), so N dispatchers send a sender at its rate, not N
times it; :class:`Throttle` keeps buckets in one process (unit tests).

The clock is injected: tests step it instead of sleeping.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

import sqlalchemy as sa

Clock = Callable[[], float]


class TokenBucket:
    """``rate`` tokens a second, holding at most ``capacity`` (one second's worth by default)."""

    def __init__(self, rate: float, capacity: float | None = None, clock: Clock = time.monotonic):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(rate, 1.0))
        self.clock = clock
        self.tokens = self.capacity
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def try_take(self, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are enough.

        A message dearer than the whole bucket (a 6-segment text on a 5/s sender)
        goes when the bucket is full and leaves it in debt, so it is never starved.
        """
        self._refill()
        if self.tokens >= min(cost, self.capacity):
            self.tokens -= cost
            return True
        return False

    def wait_time(self, cost: float = 1.0) -> float:
        """Seconds until :meth:`try_take` of ``cost`` would succeed."""
        self._refill()
        missing = min(cost, self.capacity) - self.tokens
        return max(0.0, missing / self.rate)


class Throttle:
    """One :class:`TokenBucket` per sender key, created on first use, in this process only.

    For tests (the clock is injected) and one-process use; several dispatchers share
    :class:`RedisThrottle` or :class:`DatabaseThrottle` instead.  ``session`` (the
    claim's transaction) is what the database throttle needs; here it is ignored."""

    def __init__(self, clock: Clock = time.monotonic):
        self.clock = clock
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._lock = threading.Lock()

    def try_take(self, key: Hashable, rate: float, cost: float = 1.0, session=None) -> bool:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.rate != rate:
                # a tenant's capacity changed: start the new rate from a full bucket
                bucket = self._buckets[key] = TokenBucket(rate, clock=self.clock)
            return bucket.try_take(cost)


# -- shared throttles: every dispatcher asks the same bucket --------------------------------
#
# One dispatcher kept its buckets in memory, so two dispatchers sent each sender's texts
# at twice its rate.  The two below keep a sender's allowance where every dispatcher
# reads it: Redis (HYSBYS_REDIS_URL) or, without Redis, the notify database.

def key_text(key: Hashable) -> str:
    """A sender key (tenant id, provider, sender) as one string for a shared store."""
    parts = key if isinstance(key, tuple) else (key,)
    return "|".join(str(p) for p in parts)


def window_for(rate: float, window: float = 1.0) -> tuple[int, int]:
    """(segments, seconds) of a moving window that allows ``rate`` a second.

    One second by default; a sender slower than one segment a second gets the
    shortest whole window that holds one segment (0.2/s: 1 per 5 s).
    """
    seconds = max(1, int(round(window)))
    if rate * seconds < 1:
        seconds = int(-(-1 // rate))   # ceil(1 / rate)
    return max(1, int(round(rate * seconds))), seconds


class RedisThrottle:
    """Per-sender moving windows in Redis (the ``limits`` library's moving-window strategy).

    At most ``rate`` segments in any window of one second, across every dispatcher
    that shares the Redis and the key prefix; the whole second's allowance may go at
    once (the burst is one second's worth, as with :class:`TokenBucket`).  A text
    dearer than the window (6 segments on a 5/s sender) takes the whole window.
    Redis keeps each key only as long as its window.  If Redis cannot be reached the
    claim fails and the dispatcher tries again a second later: sending waits, it
    never goes unthrottled.
    """

    def __init__(self, url: str, prefix: str = "hysbys", window: float = 1.0):
        from limits import RateLimitItemPerSecond
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        self._item = RateLimitItemPerSecond
        self.storage = RedisStorage(url, key_prefix=f"{prefix}:throttle", socket_timeout=2,
                                    socket_connect_timeout=2)
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.window = window

    def try_take(self, key: Hashable, rate: float, cost: float = 1.0, session=None) -> bool:
        amount, seconds = window_for(rate, self.window)
        item = self._item(amount, seconds)
        return self.limiter.hit(item, key_text(key), cost=min(amount, max(1, int(round(cost)))))

    def clear(self, key: Hashable, rate: float) -> None:
        amount, seconds = window_for(rate, self.window)
        self.limiter.clear(self._item(amount, seconds), key_text(key))


class DatabaseThrottle:
    """Per-sender token buckets in the notify database (``throttle_buckets``), without Redis.

    The bucket is read and written in the claim's own transaction: its row is locked
    with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so while another dispatcher's claim
    holds it this claim takes nothing from that sender (its rows wait as ``created``,
    and neither claim waits for the other); on SQLite the claim already holds the
    database's write lock.  The tokens taken commit or roll back with the claim.
    Same rule as :class:`TokenBucket`: ``rate`` a second, holding at most one
    ``window``'s worth (one second by default, at least one segment), and a text
    dearer than the bucket goes when it is full and leaves it in debt.  The clock is
    the dispatchers' wall clock (``time.time``; they keep NTP time).
    """

    def __init__(self, clock: Clock = time.time, window: float = 1.0):
        self.clock = clock
        self.window = window

    def try_take(self, key: Hashable, rate: float, cost: float = 1.0, session=None) -> bool:
        if session is None:
            raise ValueError("the database throttle takes tokens in the claim's transaction")
        from services.notify.providers.state_tables import throttle_buckets as t
        from shared.db import insert_for

        name, now = key_text(key), self.clock()
        capacity = max(rate * self.window, 1.0)
        session.execute(insert_for(session, t).values(key=name, rate=rate, tokens=capacity, stamp=now)
                        .on_conflict_do_nothing(index_elements=["key"]))
        q = sa.select(t.c.rate, t.c.tokens, t.c.stamp).where(t.c.key == name)
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        row = session.execute(q).first()
        if row is None:
            return False        # another dispatcher's claim holds this sender: try again later
        if row.rate != rate:
            tokens = capacity   # the tenant's capacity changed: the new rate starts full
        else:
            tokens = min(capacity, row.tokens + max(0.0, now - row.stamp) * rate)
        taken = tokens >= min(cost, capacity)
        if taken:
            tokens -= cost
        session.execute(sa.update(t).where(t.c.key == name)
                        .values(rate=rate, tokens=tokens, stamp=max(now, row.stamp)))
        return taken
