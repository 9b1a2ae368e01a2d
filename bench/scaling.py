"""scaling: bin-night's platform run at 10,000, 100,000 and 1,000,000 subscribers.

Time should grow linearly with the audience and memory stay flat.  The whole
scenario has a wall-time cap (``HYSBYS_BENCH_SCALING_CAP`` seconds, 20 minutes by
default): before each size it estimates that size's wall time from the previous
one, scaled linearly, and a size that would not fit in what is left of the cap is
not run.  It is recorded as not run, with the estimate and the cap; nothing is
extrapolated into the figures.  A size that runs gets what is left of the cap as
its timeout, and one that hits it is recorded with what it managed.
"""
from __future__ import annotations

import os
import tempfile
import time

from bench import env
from bench.common import Goal, envelope, log
from bench.scenarios import platform_bin_night

SIZES = (10_000, 100_000, 1_000_000)
CAP_SECONDS = float(os.environ.get("HYSBYS_BENCH_SCALING_CAP", 20 * 60))
# "linear": the rate at a size is at least this share of the rate at the size before;
# "flat": every process's peak RSS at the largest size within this factor of the smallest's
RATE_KEPT = 0.8
RSS_GROWTH = 1.25


def scaling(sizes: tuple[int, ...] = SIZES, cap: float = CAP_SECONDS) -> dict:
    """Run each size in turn, inside the cap; judge linear time and flat memory."""
    log_dir = tempfile.mkdtemp(prefix="hysbys-bench-scaling-")
    log(f"scaling: {', '.join(f'{n:,}' for n in sizes)} subscribers, cap {cap:.0f} s "
        f"(process logs in {log_dir})")
    began = time.monotonic()
    runs: list[dict] = []
    for n in sizes:
        left = cap - (time.monotonic() - began)
        estimate = _estimate(runs, n)
        if estimate is not None and estimate > left:
            log(f"  {n:,}: not run (estimated {estimate:.0f} s from the last run; {left:.0f} s "
                f"of the {cap:.0f} s cap left)")
            runs.append({"subscribers": n, "run": False, "estimated_wall_seconds": round(estimate),
                         "cap_seconds_left": round(left),
                         "reason": "would not fit in what was left of the scenario's wall-time cap"})
            continue
        log(f"  {n:,} subscribers ({left:.0f} s of the cap left)")
        figures = platform_bin_night(n, log_dir=f"{log_dir}", timeout=max(60.0, left - 30))
        runs.append({"subscribers": n, "run": True, **figures})
    return _result(runs, cap, time.monotonic() - began, log_dir)


def _estimate(runs: list[dict], n: int) -> float | None:
    """The last completed size's wall time for ``n``: its sending time scaled linearly,
    plus its set-up (starting the stack, tenants, seeding) as it was."""
    done = [r for r in runs if r.get("run") and not r.get("timed_out")]
    if not done:
        return None
    last = done[-1]
    sending = last["seconds_due_to_last_handoff"] or 0.0
    return max(0.0, last["wall_seconds"] - sending) + sending * n / last["subscribers"]


def _result(runs: list[dict], cap: float, wall: float, log_dir: str) -> dict:
    ran = [r for r in runs if r.get("run")]
    complete = [r for r in ran if not r.get("timed_out")]
    goals = []
    for before, after in zip(complete, complete[1:], strict=False):
        goals.append(Goal(f"rate_at_{after['subscribers']}_vs_{before['subscribers']}",
                          _share(after, before), RATE_KEPT, unit="×"))
    growth = _rss_growth(complete)
    if growth is not None:
        goals.append(Goal("peak_rss_growth_smallest_to_largest", growth, RSS_GROWTH,
                          at_least=False, unit="×"))
    goals.append(Goal("sizes_completed", len(complete), 2))
    calls = [r["provider_calls_per_notification"] for r in complete]
    platform = {"runs": runs, "cap_seconds": cap, "capped": len(complete) < len(runs),
                "provider_calls_per_notification": max(calls) if calls else None,
                "rss_growth_smallest_to_largest": None if growth is None else round(growth, 3),
                "wall_seconds": round(wall, 1)}
    scope = ", ".join(f"{r['subscribers']:,}" for r in complete)
    return envelope(
        "scaling", env.machine(), platform,
        {"what": "not measured here: bin-night measures the peer at 100,000"},
        {"what": "not measured here: bin-night measures the broker's limit at 100,000"},
        ratio_vs_peer=None, ratio_vs_limit=None, goals=goals, log_dir=log_dir,
        summary={"metric": "notifications/s at each size; largest peak RSS",
                 "platform": "; ".join(_run_line(r) for r in runs),
                 "peer": "—", "limit": "—",
                 "goal": f"rate kept ≥ {RATE_KEPT:g}× size to size, peak RSS ≤ {RSS_GROWTH:g}× "
                         f"(judged on {scope or 'nothing'})",
                 "ratio_note": "the comparison is the platform's own smaller runs"})


def _share(after: dict, before: dict) -> float | None:
    a, b = after.get("notifications_per_second"), before.get("notifications_per_second")
    return a / b if a and b else None


def _rss_growth(complete: list[dict]) -> float | None:
    """The largest per-process factor of peak RSS from the smallest run to the largest."""
    if len(complete) < 2:
        return None
    first, last = complete[0]["peak_rss_mb"], complete[-1]["peak_rss_mb"]
    return max(last[name] / first[name] for name in first if first[name] and name in last)


def _run_line(run: dict) -> str:
    n = f"{run['subscribers']:,}"
    if not run.get("run"):
        return f"{n}: not run (cap)"
    rate = run.get("notifications_per_second")
    peak = max(run["peak_rss_mb"].values()) if run.get("peak_rss_mb") else None
    cut = " (timed out)" if run.get("timed_out") else ""
    return f"{n}: {rate:,.0f}/s, {peak:,.0f} MB{cut}" if rate else f"{n}: —{cut}"
