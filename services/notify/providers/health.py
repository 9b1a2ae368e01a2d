"""Provider health: a circuit breaker per provider, and the figures /ops shows.

Circuit breaker (per provider name, shared by every tenant, because an outage
at Twilio is an outage for all of them)::

    closed --N consecutive outages--> open --cool-down--> half-open
    half-open --trial succeeds--> closed
    half-open --trial fails-----> open (a new cool-down)

Every configured dispatcher shares each circuit (:class:`SharedCircuitBreaker` over
Redis or notify's database, see ``wiring.configured_safeguards``): outages any of them
meets count together, and an open circuit is open for all.  :class:`CircuitBreaker`
is the same machine in one process's memory (unit tests step its clock).

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
from dataclasses import asdict, dataclass
from typing import Protocol

import sqlalchemy as sa

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

    def available(self, session=None) -> bool:
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
    """A circuit breaker per provider name, made on first use.

    ``store`` None: each breaker lives in this process (:class:`CircuitBreaker`).
    With a store (:class:`RedisCircuitStore`, :class:`DatabaseCircuitStore`) every
    dispatcher sharing it sees, and moves, the same circuit (:class:`SharedCircuitBreaker`).
    """

    def __init__(self, failure_threshold: int = 5, cooldown: float = 30.0,
                 clock: Clock | None = None, store: CircuitStore | None = None,
                 trial_lease: float = 30.0):
        if store is None:
            self._make = lambda name: CircuitBreaker(failure_threshold, cooldown,
                                                     clock or time.monotonic)
        else:
            self._make = lambda name: SharedCircuitBreaker(
                store, name, failure_threshold, cooldown, trial_lease, clock or time.time)
        self._breakers: dict[str, CircuitBreaker | SharedCircuitBreaker] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> CircuitBreaker | SharedCircuitBreaker:
        with self._lock:
            if name not in self._breakers:
                self._breakers[name] = self._make(name)
            return self._breakers[name]

    def states(self) -> dict[str, str]:
        with self._lock:
            names = list(self._breakers)
        return {name: self[name].state for name in names}


# -- shared circuits: one per provider for every dispatcher ---------------------------------

@dataclass
class Circuit:
    """A provider's circuit as stored: times are Unix seconds of the dispatchers' clocks."""

    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trial_until: float = 0.0     # half-open: the trial call's lease (0: no trial out)


class CircuitStore(Protocol):
    def load(self, name: str, session=None) -> Circuit:
        """The circuit now; ``session``: the caller's open transaction, if it has one."""
        ...

    def update(self, name: str, change: Callable[[Circuit], tuple[bool, Circuit | None]]) -> bool:
        """Apply ``change`` atomically (read, decide, write); returns its verdict.

        ``change`` returns (verdict, the circuit to store, or None to store nothing)."""
        ...


class SharedCircuitBreaker:
    """The same state machine as :class:`CircuitBreaker`, kept in a :class:`CircuitStore`.

    The half-open trial is a lease (``trial_lease`` seconds, longer than a provider
    call's timeout): if the dispatcher that took it dies mid-call, another dispatcher
    takes the next trial when the lease runs out, so a provider is never left
    half-open for good.  While the circuit is closed with no failures counted, a call
    costs one read before and none after (a success changes nothing to store).
    """

    def __init__(self, store: CircuitStore, name: str, failure_threshold: int = 5,
                 cooldown: float = 30.0, trial_lease: float = 30.0, clock: Clock = time.time):
        self.store = store
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.trial_lease = trial_lease
        self.clock = clock

    def _cooled(self, c: Circuit, now: float) -> bool:
        return now - c.opened_at >= self.cooldown

    @property
    def state(self) -> str:
        c, now = self.store.load(self.name), self.clock()
        if c.state == OPEN and self._cooled(c, now):
            return HALF_OPEN
        return c.state

    @property
    def failures(self) -> int:
        return self.store.load(self.name).failures

    def available(self, session=None) -> bool:
        """Asked by the claim, in its transaction (``session``): on SQLite a second
        connection would wait for the claim's own write lock."""
        c, now = self.store.load(self.name, session), self.clock()
        if c.state == CLOSED:
            return True
        if c.state == OPEN:
            return self._cooled(c, now)
        return c.trial_until <= now

    def allow(self) -> bool:
        if self.store.load(self.name).state == CLOSED:
            return True

        def change(c: Circuit) -> tuple[bool, Circuit | None]:
            now = self.clock()
            if c.state == CLOSED:
                return True, None
            if c.state == OPEN and not self._cooled(c, now):
                return False, None
            if c.state == HALF_OPEN and c.trial_until > now:
                return False, None      # another dispatcher's trial call is out
            return True, Circuit(HALF_OPEN, c.failures, c.opened_at, now + self.trial_lease)
        return self.store.update(self.name, change)

    def record(self, outage: bool) -> None:
        if not outage:
            c = self.store.load(self.name)
            if c.state == CLOSED and c.failures == 0:
                return

        def change(c: Circuit) -> tuple[bool, Circuit | None]:
            if not outage:
                return True, Circuit()
            failures = c.failures + 1
            if c.state == HALF_OPEN or failures >= self.failure_threshold:
                return True, Circuit(OPEN, failures, self.clock(), 0.0)
            return True, Circuit(c.state, failures, c.opened_at, c.trial_until)
        self.store.update(self.name, change)


class RedisCircuitStore:
    """Circuits as Redis hashes (``<prefix>:circuit:<provider>``), changed under WATCH/MULTI."""

    def __init__(self, url: str, prefix: str = "hysbys"):
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2,
                                          decode_responses=True)
        self.prefix = prefix

    def _key(self, name: str) -> str:
        return f"{self.prefix}:circuit:{name}"

    @staticmethod
    def _parse(raw: dict) -> Circuit:
        if not raw:
            return Circuit()
        return Circuit(raw.get("state", CLOSED), int(raw.get("failures", 0)),
                       float(raw.get("opened_at", 0)), float(raw.get("trial_until", 0)))

    def load(self, name: str, session=None) -> Circuit:
        return self._parse(self.redis.hgetall(self._key(name)))

    def update(self, name: str, change) -> bool:
        key = self._key(name)
        verdict: list[bool] = []

        def attempt(pipe) -> None:
            verdict.clear()
            ok, new = change(self._parse(pipe.hgetall(key)))
            verdict.append(ok)
            pipe.multi()
            if new is not None:
                pipe.hset(key, mapping=asdict(new))
        self.redis.transaction(attempt, key)
        return verdict[0]


class DatabaseCircuitStore:
    """Circuits as rows of notify's ``circuit_breakers``, changed under ``SELECT … FOR UPDATE``."""

    def __init__(self, db: Database):
        self.db = db

    def load(self, name: str, session=None) -> Circuit:
        from services.notify.providers.state_tables import circuit_breakers as t

        q = sa.select(t.c.state, t.c.failures, t.c.opened_at, t.c.trial_until).where(
            t.c.provider == name)
        if session is not None:
            row = session.execute(q).first()
        else:
            with self.db.read() as own:
                row = own.execute(q).first()
        return Circuit(*row) if row else Circuit()

    def update(self, name: str, change) -> bool:
        from services.notify.providers.state_tables import circuit_breakers as t

        with self.db.transaction() as session:
            session.execute(insert_for(session, t).values(provider=name)
                            .on_conflict_do_nothing(index_elements=["provider"]))
            q = sa.select(t.c.state, t.c.failures, t.c.opened_at, t.c.trial_until).where(
                t.c.provider == name)
            if self.db.dialect == "postgresql":
                q = q.with_for_update()
            ok, new = change(Circuit(*session.execute(q).one()))
            if new is not None:
                session.execute(sa.update(t).where(t.c.provider == name).values(**asdict(new)))
        return ok


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
