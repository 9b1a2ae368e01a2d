"""What every scenario shares: the results envelope, goal shortfalls, progress lines."""
from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def progress(label: str, every: float = 5.0) -> Callable[[int, int], None]:
    """A callback printing ``label: done/total`` at most every ``every`` seconds."""
    last = {"t": 0.0}

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last["t"] >= every or done >= total:
            last["t"] = now
            log(f"  {label}: {done:,}/{total:,}")
    return show


def wait_for_count(count: Callable[[], int], n: int, timeout: float, pause: float = 1.0,
                   show: Callable[[int, int], None] | None = None) -> dict:
    """Poll ``count()`` until it reaches ``n`` or ``timeout`` passes.

    A database that goes away for a while (a server restarted by other work on a
    shared machine) is waited out and counted, never a crash: the run's figures then
    include the outage, and the results file says so."""
    import sqlalchemy as sa

    deadline = time.monotonic() + timeout
    done, lost = 0, 0
    while time.monotonic() < deadline:
        try:
            done = count()
        except sa.exc.OperationalError:
            lost += 1
            time.sleep(2.0)
            continue
        if show:
            show(done, n)
        if done >= n:
            break
        time.sleep(pause)
    return {"done": done, "timed_out": done < n, "database_connection_lost": lost}


@dataclass(frozen=True)
class Goal:
    """One goal: ``measured`` must be at least (``at_least``) or under ``target``."""

    name: str
    measured: float | None
    target: float
    at_least: bool = True
    unit: str = ""

    @property
    def met(self) -> bool:
        if self.measured is None:
            return False
        return self.measured >= self.target if self.at_least else self.measured < self.target

    def shortfall(self) -> dict:
        """By how much the goal was missed: the gap, and the factor still needed."""
        measured = None if self.measured is None else round(self.measured, 3)
        out: dict = {"goal": ("≥ " if self.at_least else "< ") + f"{self.target:g}{self.unit}",
                     "measured": measured}
        if self.measured is None:
            out["by"] = None
            return out
        gap = self.target - self.measured if self.at_least else self.measured - self.target
        out["by"] = round(gap, 3)
        if self.measured > 0 and self.target > 0:
            factor = self.target / self.measured if self.at_least else self.measured / self.target
            out["factor_needed"] = round(factor, 2)
        return out


def judge(goals: list[Goal]) -> dict:
    """``goal_met`` for all the goals, and a ``shortfall`` entry for each one missed."""
    missed = {g.name: g.shortfall() for g in goals if not g.met}
    out: dict = {"goal_met": not missed}
    if missed:
        out["shortfall"] = missed
    return out


def envelope(scenario: str, machine: dict, platform: dict, peer: dict, limit: dict, *,
             ratio_vs_peer: float | None, ratio_vs_limit: float | None, goals: list[Goal],
             summary: dict, **extra) -> dict:
    """The results file's shape, the same for every scenario (extra keys follow)."""
    return {
        "scenario": scenario, "machine": machine, "platform": platform, "peer": peer,
        "limit": limit, "ratio_vs_peer": _round(ratio_vs_peer),
        "ratio_vs_limit": _round(ratio_vs_limit), **judge(goals), "summary": summary,
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **extra,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is zero (never a division error)."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)
