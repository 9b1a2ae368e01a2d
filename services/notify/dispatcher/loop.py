"""The :class:`Dispatcher`: one loop that claims, hands off and records, and its lanes.

Each turn claims a batch (:mod:`.claim`), gives a remote provider's rows to that
provider's lane (:mod:`.lanes`) in small chunks, urgent first, and hands an
in-process provider's rows off in its own thread, one chunk per batch
(:mod:`.handoff`); each chunk's outcomes are recorded at once (:mod:`.record`).
Every ``sweep_every`` seconds it sweeps (:mod:`.sweeper`).  It claims again
without waiting for the lanes: a lane that empties wakes it.  After a pass that found
less than a chunk it waits a little (``linger``) before claiming again.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import wait as wait_for

from services.notify.dispatcher import handoff, record, sweeper
from services.notify.dispatcher.claim import Admission, Claim, ProviderChooser, claim
from services.notify.dispatcher.handoff import Outcome
from services.notify.dispatcher.lanes import Lanes, remote
from services.notify.dispatcher.safeguards import Safeguards
from shared.db import Database, utcnow

log = logging.getLogger(__name__)


class Dispatcher:
    """Claims created notifications fairly across tenants and hands them to providers."""

    def __init__(self, db: Database, choose: ProviderChooser, *, batch: int = 200, chunk: int = 10,
                 interval: float = 0.1, linger: float | None = None,
                 on_outbox: Callable[[], None] | None = None,
                 safeguards: Safeguards | None = None):
        self.db = db
        self.choose = choose
        self.batch = batch
        self.chunk = chunk
        self.interval = interval
        # After a pass that claimed less than a chunk, wait ``linger`` (the idle interval
        # unless told) before claiming again, or until a lane nudges: a trickle of sends is
        # then claimed several at a time instead of a pass each, and every pass costs its
        # claim, stamp and record transactions and its outcome events whatever it carries.
        # No row waits longer than it would at an idle dispatcher (docs/decisions.md).
        self.linger = interval if linger is None else linger
        self.nudge = threading.Event()
        self.on_outbox = on_outbox or (lambda: None)
        self.guard = safeguards or Safeguards()
        self.lanes = Lanes(on_idle=self.nudge.set)

    # -- 1. claim ---------------------------------------------------------------
    def claim(self) -> list[Claim]:
        """Mark up to ``batch`` due notifications ``sending`` (:func:`.claim.claim`)."""
        return claim(self.db, Admission(self.choose, self.guard, self.lanes.busy), self.batch)

    # -- 2. hand off ------------------------------------------------------------
    def run_once(self, *, wait: bool = True) -> int:
        """Claim one batch and hand it off; returns how many were claimed.

        Rows for a remote provider go to that provider's lane; rows for an
        in-process provider are handed off here.  ``wait=False`` (the loop) returns
        without waiting for the lanes; ``wait=True`` (tests, one-shot callers) waits
        for them and raises what a lane raised.
        """
        claims = self.claim()
        if not claims:
            return 0
        suppressed = handoff.opted_out(self.db, [c.row for c in claims])
        here: list[Claim] = []
        lanes: dict[str, list[Claim]] = {}
        for c in claims:
            first = c.plan[0] if c.plan else None
            if first is not None and remote(first):
                lanes.setdefault(first.name, []).append(c)
            else:
                here.append(c)
        futures = [self.lanes[name].submit(self._hand_off_chunks, lane_claims, suppressed)
                   for name, lane_claims in lanes.items()]
        try:
            # An in-process provider (the simulator) dies with the process, so its claims
            # go in one chunk: two transactions for the batch instead of two per ten.
            if here:
                self.hand_off(here, suppressed)
        finally:
            if wait and futures:
                wait_for(futures)
        if wait:
            for f in futures:
                f.result()
        return len(claims)

    def _hand_off_chunks(self, claims: list[Claim], suppressed: frozenset) -> None:
        """A lane's work: small chunks bound what a crash leaves "outcome unknown"; urgent first."""
        claims = sorted(claims, key=lambda c: not c.row.urgent)
        for start in range(0, len(claims), self.chunk):
            self.hand_off(claims[start:start + self.chunk], suppressed)

    def hand_off(self, chunk: list[Claim], suppressed: frozenset = frozenset()) -> None:
        """Stamp ``handoff_at`` on the chunk, call providers for the stamped rows, record."""
        outcomes = [Outcome(c, "suppressed", reason="recipient opted out") for c in chunk
                    if (c.row.tenant_id, c.row.channel, c.row.recipient) in suppressed]
        to_send = [c for c in chunk if (c.row.tenant_id, c.row.channel, c.row.recipient) not in suppressed]
        stamped = handoff.stamp(self.db, to_send)
        outcomes += [handoff.send(c, self.guard) for c in to_send if c.row.id in stamped]
        # -- 3. record ----------------------------------------------------------
        record.record_held(self.db, self.guard, outcomes, self.on_outbox)

    # -- the lanes --------------------------------------------------------------
    def busy_lanes(self) -> list[str]:
        return self.lanes.busy_names()

    def close(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout``, default ``lanes_drain``) for in-flight lanes; True if all ended.

        A lane still busy afterwards holds stamped rows: if the process then ends,
        the sweeper fails them "outcome unknown" (never sent twice).
        """
        deadline = time.monotonic() + (self.guard.lanes_drain if timeout is None else timeout)
        self.lanes.join(deadline, time.monotonic)
        busy = self.busy_lanes()
        if busy:
            log.warning("dispatcher stopping with provider lanes still handing off: %s",
                        ", ".join(sorted(busy)))
        return not busy

    # -- the sweeper ------------------------------------------------------------
    def sweep(self, now: dt.datetime | None = None, limit: int = 500) -> tuple[int, int]:
        """Repair what a crashed dispatcher left ``sending``; returns (re-queued, failed)."""
        requeued, failed = sweeper.sweep(self.db, self.guard.stale_after, now or utcnow(), limit)
        if requeued or failed:
            log.warning("sweeper: %d claimed notifications re-queued, %d with an unknown outcome "
                        "failed", requeued, failed)
            self.on_outbox()
        return requeued, failed

    def pause_after(self, claimed: int) -> float:
        """How long to wait before the next claim: nothing after a pass that found work
        enough for a chunk, ``linger`` after a trickle, ``interval`` after nothing."""
        if claimed == 0:
            return self.interval
        return 0.0 if claimed >= self.chunk else self.linger

    def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if a lane finishes (it nudges)."""
        if seconds > 0:
            self.nudge.wait(seconds)
            self.nudge.clear()

    def run_forever(self, stop: threading.Event) -> None:
        last_sweep = float("-inf")
        while not stop.is_set():
            try:
                if time.monotonic() - last_sweep >= self.guard.sweep_every:
                    last_sweep = time.monotonic()
                    self.sweep()
                self.guard.health.flush_if_due(self.db, self.guard.breakers)
                self.pause(self.pause_after(self.run_once(wait=False)))
            except Exception:
                log.exception("dispatcher failed; retrying")
                stop.wait(1.0)
        self.close()
