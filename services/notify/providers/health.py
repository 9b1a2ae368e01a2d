"""Provider health: a circuit breaker per provider, and the figures /ops shows.

Circuit breaker (per provider name, shared by every tenant, because an outage
at Twilio is an outage for all of them)::

    closed --N consecutive outages--> open --cool-down--> half-open
    half-open --trial succeeds--> closed
    half-open --trial fails-----> open (a new cool-down)

Only outages count (5xx, timeouts, connection errors).  A provider that answers
"invalid number" or "slow down" is up.  While a circuit is open the dispatcher
fails over to the tenant's next provider, or leaves the notification
``created`` until one is available.

:class:`HealthBoard` keeps a minute of calls per provider and writes them, with
the circuit state, to ``provider_states`` every few seconds, so the API process
(/ops, /metrics) sees what the workers see.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable

from services.notify.models import ProviderState
from shared.db import Database, insert_for, utcnow

Clock = Callable[[], float]
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, cooldown: float = 30.0,
                 clock: Clock = time.monotonic):
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.clock = clock
        self._state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._trial = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._cooled():
                return HALF_OPEN
            return self._state

    def _cooled(self) -> bool:
        return self.clock() - self.opened_at >= self.cooldown

    def available(self) -> bool:
        """Could a call be made now?  (Asks without taking the half-open trial.)"""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                return self._cooled()
            return not self._trial

    def allow(self) -> bool:
        """May this call go ahead?  In half-open, only one trial call at a time."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN and not self._cooled():
                return False
            if self._trial:
                return False
            self._state, self._trial = HALF_OPEN, True
            return True

    def record(self, outage: bool) -> None:
        """The outcome of an allowed call: ``outage`` True for 5xx/timeout/connection."""
        with self._lock:
            if not outage:
                self._state, self.failures, self._trial = CLOSED, 0, False
                return
            self.failures += 1
            if self._state == HALF_OPEN or self.failures >= self.failure_threshold:
                self._state, self.opened_at, self._trial = OPEN, self.clock(), False


class Breakers:
    """A :class:`CircuitBreaker` per provider name, made on first use."""

    def __init__(self, failure_threshold: int = 5, cooldown: float = 30.0,
                 clock: Clock = time.monotonic):
        self._make = lambda: CircuitBreaker(failure_threshold, cooldown, clock)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> CircuitBreaker:
        with self._lock:
            if name not in self._breakers:
                self._breakers[name] = self._make()
            return self._breakers[name]

    def states(self) -> dict[str, str]:
        with self._lock:
            names = list(self._breakers)
        return {name: self[name].state for name in names}


class HealthBoard:
    """Recent calls per provider (a sliding window), flushed to ``provider_states``."""

    def __init__(self, window: float = 60.0, flush_every: float = 5.0, clock: Clock = time.monotonic):
        self.window = window
        self.flush_every = flush_every
        self.clock = clock
        self._calls: dict[str, deque[tuple[float, float, bool]]] = {}
        self._lock = threading.Lock()
        self._flushed = float("-inf")

    def observe(self, provider: str, seconds: float, ok: bool) -> None:
        with self._lock:
            self._calls.setdefault(provider, deque(maxlen=10_000)).append((self.clock(), seconds, ok))

    def snapshot(self, provider: str) -> tuple[int, int, float | None]:
        """(calls, errors, median latency in ms) over the window."""
        with self._lock:
            calls = self._calls.get(provider, deque())
            horizon = self.clock() - self.window
            while calls and calls[0][0] < horizon:
                calls.popleft()
            recent = list(calls)
        if not recent:
            return 0, 0, None
        errors = sum(1 for _, _, ok in recent if not ok)
        return len(recent), errors, round(statistics.median(s for _, s, _ in recent) * 1000, 2)

    def flush_if_due(self, db: Database, breakers: Breakers) -> bool:
        if self.clock() - self._flushed < self.flush_every:
            return False
        self._flushed = self.clock()
        self.flush(db, breakers)
        return True

    def flush(self, db: Database, breakers: Breakers) -> None:
        """Upsert one ``provider_states`` row per provider this process has used."""
        circuits = breakers.states()
        with self._lock:
            names = sorted(set(self._calls) | set(circuits))
        if not names:
            return
        now = utcnow()
        with db.transaction() as session:
            for name in names:
                calls, errors, p50 = self.snapshot(name)
                values = {"circuit": circuits.get(name, CLOSED), "recent_calls": calls,
                          "recent_errors": errors, "latency_p50_ms": p50, "updated_at": now}
                stmt = insert_for(session, ProviderState.__table__).values(provider=name, **values)
                session.execute(stmt.on_conflict_do_update(index_elements=["provider"], set_=values))
