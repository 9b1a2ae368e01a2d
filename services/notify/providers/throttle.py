"""A throttle per sender: token buckets counting SMS segments.

A Twilio number in the UK takes about 10 segments a second; sending faster only
fills Twilio's own queue, where messages age past their moment (a bin reminder
at 23:00 is no use).  The dispatcher asks before it claims a notification, so a
throttled tenant's rows simply stay ``created`` and the batch goes to others.

The clock is injected: tests step it instead of sleeping.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

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
    """One :class:`TokenBucket` per sender key, created on first use."""

    def __init__(self, clock: Clock = time.monotonic):
        self.clock = clock
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._lock = threading.Lock()

    def try_take(self, key: Hashable, rate: float, cost: float = 1.0) -> bool:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.rate != rate:
                # a tenant's capacity changed: start the new rate from a full bucket
                bucket = self._buckets[key] = TokenBucket(rate, clock=self.clock)
            return bucket.try_take(cost)
