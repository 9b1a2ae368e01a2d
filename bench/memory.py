"""scheduler-memory: planning one evening for 1,000,000 subscribers, peak RSS and time.

A wrapper round :mod:`bench.scheduler_memory` (the scheduler engineer's
measurement: seed with COPY, then plan and emit the evening in a fresh process
whose own peak RSS, ``VmHWM``, is the figure), on a throwaway PostgreSQL database, written
in the same results shape as the other scenarios.

There is no peer figure: GOV.UK Notify has no scheduler (a service team's own
system decides who is due and posts each one).  The limit is the floor of the
same process: its RSS once the code is imported and before any work.
"""
from __future__ import annotations

import os

from bench import env
from bench.common import Goal, envelope, log, ratio

SUBSCRIBERS = 1_000_000
GOAL_MB = 150.0         # issue 16 (it was 300 MB before)


def scheduler_memory(subscribers: int = SUBSCRIBERS, db_kind: str | None = None) -> dict:
    """Seed, then plan and emit one evening; peak RSS against the 150 MB goal, and every
    request of the evening emitted (a run that emits nothing measures nothing)."""
    from bench import scheduler_memory as measure

    db_kind = db_kind or os.environ.get("HYSBYS_BENCH_MEMORY_DB", "postgresql")
    # the same PostgreSQL server as the other scenarios, unless the measurement was told otherwise
    measure.PG_ADMIN_URL = os.environ.get("HYSBYS_TEST_PG_ADMIN_URL", env.PG_ADMIN_URL)
    log(f"scheduler-memory: one evening for {subscribers:,} subscribers on {db_kind}")
    r = measure.one(db_kind, subscribers)
    log(f"  peak RSS {r['peak_rss_mb']} MB (baseline {r['rss_baseline_mb']} MB), plan "
        f"{r['plan_seconds']} s, emit {r['emit_seconds']} s for {r['emitted']:,} requests")
    peak, floor = r["peak_rss_mb"], r["rss_baseline_mb"]
    expected = measure.expected_requests(subscribers)
    platform = {**r, "evening_seconds": round(r["plan_seconds"] + r["emit_seconds"], 2)}
    return envelope(
        "scheduler-memory", env.machine(), platform,
        {"what": "not measured: GOV.UK Notify has no scheduler; a service team's own system "
                 "decides who is due and posts each notification"},
        {"what": "the same process after imports, before any work", "rss_mb": floor},
        ratio_vs_peer=None, ratio_vs_limit=ratio(peak, floor),
        goals=[Goal("peak_rss_mb", peak, GOAL_MB, at_least=False, unit=" MB"),
               Goal("requests_emitted", r["emitted"], expected)],
        expected_requests=expected,
        subscribers=subscribers,
        summary={"metric": f"peak RSS planning and emitting one evening ({subscribers:,} subscribers)",
                 "platform": f"{peak:,.0f} MB; {platform['evening_seconds']:,.0f} s for "
                             f"{r['emitted']:,} requests",
                 "peer": "— (no scheduler)", "limit": f"{floor:,.0f} MB (after imports)",
                 "goal": f"peak RSS < {GOAL_MB:g} MB, all {expected:,} requests emitted",
                 "ratio_note": "peak RSS ÷ the process's RSS after imports (lower is better)"})
