"""The scenarios of ``make bench`` / ``hysbys bench SCENARIO``.

Each measures the platform and its comparison points in the same run, so the
ratios hold on a noisy machine, and writes ``bench/results/<scenario>.json``
(see :func:`bench.common.envelope` for its shape).  Every run cleans up after
itself: its processes, its RabbitMQ vhost and its PostgreSQL database.
"""
from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import signal
import sys
import tempfile
import time

from bench import env, limit_kombu, peer_celery
from bench.common import RESULTS, Goal, envelope, log, progress, ratio
from bench.platform_run import Platform
from bench.procs import cpu_per_notification, peer_cpu_seconds, server_cpu_seconds

TENANTS = 22
BODY = "Helo Person, casgliad biniau yfory: rownd R1."


def platform_bin_night(n: int, tenants: int = TENANTS, log_dir: str | None = None,
                       timeout: float = 3600) -> dict:
    """The platform: ``tenants`` councils, ``n`` subscribers, one broadcast each, due at once."""
    started = time.monotonic()
    with env.vhost() as amqp, env.database() as db:
        p = Platform.start(db, amqp, log_dir=log_dir)
        try:
            ts = [p.create_tenant(f"council-{i:02d}",
                                  capacity={"segments_per_second": 1000, "senders": 100})
                  for i in range(tenants)]
            p.wait_replicated(ts)
            p.seed_subscribers(ts, n)
            cpu_before = {**p.stack.cpu_seconds(), **server_cpu_seconds()}
            due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
            p.schedule_broadcasts(ts, due)
            profiled = p.profile_if_asked(["notify-worker", "notify-dispatcher", "scheduler-ticker",
                                           "scheduler-worker", "inbound-worker"], 60)
            outcome = p.wait_handed_off(n, due, timeout=timeout, progress=progress("platform"))
            calls = p.proc("notify-dispatcher").metric(
                "hysbys_provider_calls_total", {"provider": "simulator"})
            figures = sending_figures(outcome, calls, p.stack, time.monotonic() - started)
            figures["cpu_ms_per_notification"] = cpu_per_notification(
                cpu_before, {**p.stack.cpu_seconds(), **server_cpu_seconds()},
                outcome["handed_off"])
            if profiled:
                figures["profiled"] = True        # py-spy's sampling cost is in these figures
            return figures
        finally:
            p.stop()


def sending_figures(outcome: dict, calls: float, stack, wall: float) -> dict:
    """A platform sending run's figures from its hand-offs, provider calls and processes."""
    latency = outcome["due_to_handoff_seconds"]
    seconds = latency.get("max")
    return {
        "notifications": outcome["notifications"], "handed_off": outcome["handed_off"],
        "timed_out": outcome["timed_out"],
        "database_connection_lost": outcome.get("database_connection_lost", 0),
        "seconds_due_to_last_handoff": seconds,
        "notifications_per_second": round(outcome["handed_off"] / seconds, 1) if seconds else None,
        "due_to_handoff_seconds": latency,
        "provider_calls": calls,
        "provider_calls_per_notification": round(calls / max(1, outcome["handed_off"]), 3),
        "peak_rss_mb": stack.peak_rss_mb(), "cpu_seconds": stack.cpu_seconds(),
        "wall_seconds": round(wall, 1),
    }


def peer_bin_night(n: int, tenants: int = TENANTS, log_dir: str | None = None) -> dict:
    """The peer (GOV.UK Notify's design): a row and a Celery task per notification."""
    with env.vhost() as amqp, env.database() as db:
        peer_celery.prepare(db)
        workers = peer_celery.start_workers(db, amqp, concurrency=2,
                                             log_path=log_path(log_dir, "peer"))
        try:
            time.sleep(3)
            recipients = [(f"tenant-{i % tenants}", f"+447400{i:06d}", BODY) for i in range(n)]
            cpu_before = peer_cpu_seconds(workers)
            t0 = peer_celery.fire(db, amqp, recipients)
            out = peer_celery.wait_done(db, n, t0, progress=progress("peer"))
            figures = peer_figures(out, n, t0)
            # the same accounting as the platform's: its processes' and the servers' counters
            figures["cpu_ms_per_notification"] = cpu_per_notification(
                cpu_before, peer_cpu_seconds(workers), out["done"])
            return figures
        finally:
            peer_celery.stop_workers(workers)


def peer_figures(out: dict, n: int, t0: float) -> dict:
    """A peer sending run's figures, measured from its firing (t0) as the platform's from due."""
    seconds = out["last_handoff_epoch"] - t0 if out["last_handoff_epoch"] else None
    return {"notifications": n, "handed_off": out["done"], "timed_out": out["timed_out"],
            "database_connection_lost": out.get("database_connection_lost", 0),
            "seconds_due_to_last_handoff": round(seconds, 3) if seconds else None,
            "notifications_per_second": round(out["done"] / seconds, 1) if seconds else None,
            "due_to_handoff_seconds": out["t0_to_handoff_seconds"]}


def log_path(log_dir: str | None, name: str) -> str | None:
    """Where a process's log goes (None: nowhere)."""
    return f"{log_dir}/{name}.log" if log_dir else None


def size(default: int) -> int:
    """The audience size: ``HYSBYS_BENCH_SUBSCRIBERS`` if set (a quick check), else ``default``."""
    return int(os.environ.get("HYSBYS_BENCH_SUBSCRIBERS") or default)


def bin_night(n: int | None = None) -> dict:
    """Bin night for all of Wales: the platform, the peer and the broker's limit, same n."""
    n = n or size(100_000)
    log_dir = tempfile.mkdtemp(prefix="hysbys-bench-")
    log(f"bin-night: {n:,} subscribers, {TENANTS} tenants (process logs in {log_dir})")
    platform = platform_bin_night(n, log_dir=log_dir)
    peer = peer_bin_night(n, log_dir=log_dir)
    with env.vhost() as amqp:
        limit = limit_kombu.run(amqp, n)
    rate = platform["notifications_per_second"]
    vs_peer = ratio(rate, peer["notifications_per_second"])
    vs_limit = ratio(rate, limit["messages_per_second"])
    goals = [Goal("ratio_vs_peer", vs_peer, 3.0, unit="×"),
             Goal("ratio_vs_limit", vs_limit, 0.5, unit="×"),
             Goal("handed_off", platform["handed_off"], n),
             Goal("provider_calls_per_notification",
                  platform["provider_calls_per_notification"], 1.0)]
    if platform["provider_calls_per_notification"] > 1.0:   # exactly one: more is a double send
        goals.append(Goal("at_most_one_call", platform["provider_calls_per_notification"], 1.0001,
                          at_least=False))
    return envelope(
        "bin-night", env.machine(), platform, peer, limit, ratio_vs_peer=vs_peer,
        ratio_vs_limit=vs_limit, goals=goals, subscribers=n, tenants=TENANTS, log_dir=log_dir,
        summary={"metric": "notifications/s, due → last hand-off",
                 "platform": _per_s(rate), "peer": _per_s(peer["notifications_per_second"]),
                 "limit": _per_s(limit["messages_per_second"]) + " (raw kombu)",
                 "goal": "≥ 3× peer, ≥ 0.5× limit, 1.000 provider calls each",
                 "ratio_note": "platform ÷ peer throughput; platform ÷ limit throughput"})


def _per_s(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}/s"


def _lazy(module: str, name: str):
    def run() -> dict:
        return getattr(importlib.import_module(module), name)()
    return run


SCENARIOS = {
    "bin-night": bin_night,
    "scaling": _lazy("bench.scaling", "scaling"),
    "fairness": _lazy("bench.fairness", "fairness"),
    "api-ingest": _lazy("bench.ingest", "api_ingest"),
    "inbound-ingest": _lazy("bench.ingest", "inbound_ingest"),
    "scheduler-memory": _lazy("bench.memory", "scheduler_memory"),
}


def _stop_on_sigterm(signum, frame):
    # a SIGTERM (timeout(1), a CI runner) unwinds like Ctrl-C, so every finally runs
    # and no process, vhost or database is left behind
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    """Run the named scenarios (all by default), writing one results file each."""
    names = argv or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        log(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        started, load_before = time.monotonic(), os.getloadavg()
        result = SCENARIOS[name]()
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        # how busy the machine was besides: a run beside other work is noisier
        result["load_average"] = {"before": [round(x, 2) for x in load_before],
                                  "after": [round(x, 2) for x in os.getloadavg()]}
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps({k: result.get(k) for k in ("scenario", "ratio_vs_peer", "ratio_vs_limit",
                                                     "goal_met", "wall_seconds")}))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
