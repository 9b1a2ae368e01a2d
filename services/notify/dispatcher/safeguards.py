"""What keeps the dispatcher from harming a provider, a sender or itself.

:class:`RetryPolicy` is the retry budget (attempts per notification) and the backoff
between attempts; :class:`Safeguards` gathers it with the circuit breakers, the
sender throttle, the providers' health figures and the sweeper's timings, so a test
(or ``wiring.configured_safeguards``) can inject every one of them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from services.notify.providers.health import Breakers, HealthBoard
from services.notify.providers.throttle import DatabaseThrottle, RedisThrottle, Throttle
from shared.bus import backoff


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per notification, and the exponential backoff with full jitter between them."""

    max_attempts: int = 6
    base_delay: float = 5.0
    max_delay: float = 900.0

    def delay(self, attempt: int) -> float:
        return backoff(attempt, base=self.base_delay, cap=self.max_delay)


@dataclass
class Safeguards:
    """Retry budget, circuit breakers, sender throttle and health figures, injectable for tests."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breakers: Breakers = field(default_factory=Breakers)
    throttle: Throttle | RedisThrottle | DatabaseThrottle = field(default_factory=Throttle)
    health: HealthBoard = field(default_factory=HealthBoard)
    stale_after: dt.timedelta = dt.timedelta(minutes=10)
    sweep_every: float = 30.0
    record_retry: float = 0.5       # first wait before recording outcomes again (doubles, ≤ 10 s)
    lanes_drain: float = 4.0        # on shutdown, how long to wait for in-flight lanes
