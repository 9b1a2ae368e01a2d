"""Writes docs/benchmarks.md from bench/results/*.json: the table, the plots, the method.

Usage: ``python -m bench.report [--results DIR] [--out FILE]`` (``make bench`` runs it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.common import RESULTS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
ANALYSIS = "analysis.md"    # hand-written, beside the results: kept when the page is rewritten
ORDER = ("bin-night", "scaling", "fairness", "api-ingest", "inbound-ingest", "scheduler-memory")
COLUMNS = ("Scenario", "Measures", "Platform", "Peer", "Limit", "× peer", "× limit", "Goal",
           "Met", "Machine", "Wall time")


def load(results_dir: Path = RESULTS) -> list[dict]:
    """Every results file, in the issue's order (then any others by name)."""
    found = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(found, key=lambda r: (rank.get(r.get("scenario"), len(ORDER)),
                                        r.get("scenario", "")))


def machine_text(machine: dict | None) -> str:
    """A short line for the machine: CPUs, memory, processor, Python."""
    if not machine:
        return "—"
    parts = [f"{machine['cpus']} CPU" if machine.get("cpus") else None,
             f"{machine['memory_gib']:g} GiB" if machine.get("memory_gib") else None,
             machine.get("processor") or None,
             f"Python {machine['python']}" if machine.get("python") else None]
    return ", ".join(p for p in parts if p)


def _cell(value) -> str:
    text = "—" if value in (None, "") else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _ratio(value) -> str:
    return "—" if value is None else f"{value:g}×"


def _met(result: dict) -> str:
    if result.get("goal_met"):
        return "yes"
    missed = result.get("shortfall") or {}
    if not missed:
        return "no"
    return "no: " + "; ".join(f"{name} {v.get('measured')} (goal {v.get('goal')}"
                              + (f", off by {v['factor_needed']}×" if v.get("factor_needed") else "")
                              + ")" for name, v in missed.items())


def _wall(result: dict) -> str:
    seconds = result.get("wall_seconds")
    if seconds is None:
        return "—"
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def row(result: dict) -> list[str]:
    """One scenario's cells, in COLUMNS order."""
    s = result.get("summary") or {}
    return [_cell(v) for v in (
        result.get("scenario"), s.get("metric"), s.get("platform"), s.get("peer"), s.get("limit"),
        _ratio(result.get("ratio_vs_peer")), _ratio(result.get("ratio_vs_limit")), s.get("goal"),
        _met(result), machine_text(result.get("machine")), _wall(result))]


def table(results: list[dict]) -> str:
    """The markdown table of every scenario."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in results]
    return "\n".join(lines)


def ratio_notes(results: list[dict]) -> str:
    lines = [f"- **{r['scenario']}**: {r['summary']['ratio_note']}" for r in results
             if (r.get("summary") or {}).get("ratio_note")]
    return "\n".join(lines)


def _pcts(p: dict | None) -> str:
    if not p:
        return "—"
    return ", ".join(f"{k} {p[k]:,.2f} s" for k in ("p50", "p95", "p99", "max") if k in p)


def _rss(rss: dict | None) -> str:
    return ", ".join(f"{k} {v:,.0f} MB" for k, v in (rss or {}).items()) or "—"


def _cpu(cpu: dict | None) -> str:
    return ", ".join(f"{k} {v:,.0f} s" for k, v in (cpu or {}).items()) or "—"


def _per_notification(cpu: dict) -> str:
    parts = [f"{k} {v:.2f}" for k, v in cpu.items() if k != "total"]
    return f"**{cpu.get('total', 0):.2f} in all**: " + ", ".join(parts)


def details(result: dict) -> list[str]:
    """A few lines of figures behind a scenario's row (empty for a scenario it does not know)."""
    p, peer, limit = result.get("platform", {}), result.get("peer", {}), result.get("limit", {})
    name = result.get("scenario")
    if name == "bin-night":
        return [f"platform due → hand-off: {_pcts(p.get('due_to_handoff_seconds'))}",
                f"peer due → hand-off: {_pcts(peer.get('due_to_handoff_seconds'))}",
                f"provider calls per notification: {p.get('provider_calls_per_notification', 0):.3f} "
                f"({p.get('provider_calls', 0):,.0f} calls, {p.get('handed_off', 0):,} hand-offs)",
                f"peak RSS: {_rss(p.get('peak_rss_mb'))}",
                f"CPU seconds used (whole run): {_cpu(p.get('cpu_seconds'))}",
                *([f"CPU per notification, scheduled → last hand-off (ms): "
                   f"{_per_notification(p['cpu_ms_per_notification'])}"]
                  if p.get("cpu_ms_per_notification") else []),
                *([f"peer's CPU per notification, fired → last hand-off (ms): "
                   f"{_per_notification(peer['cpu_ms_per_notification'])}"]
                  if peer.get("cpu_ms_per_notification") else [])]
    if name == "fairness":
        lines = []
        for label, side in (("platform, busy", p.get("urgent")), ("platform, idle", limit),
                            ("peer, busy", peer.get("urgent"))):
            if side:
                lines.append(f"{label}: {side.get('sent', 0)} urgent sent, "
                             f"{side.get('not_handed_off', 0)} not handed off; "
                             f"{_pcts(side.get('request_to_handoff_seconds'))}")
        for label, side in (("platform", p.get("broadcast")), ("peer", peer.get("broadcast"))):
            if side and side.get("notifications_per_second"):
                lines.append(f"{label} broadcast: {side['notifications_per_second']:,.0f}/s")
        return lines
    if name == "scheduler-memory":
        return [f"{p.get('emitted', 0):,} requests emitted; plan {p.get('plan_seconds')} s, "
                f"emit {p.get('emit_seconds')} s; peak RSS {p.get('peak_rss_mb')} MB "
                f"(after imports {p.get('rss_baseline_mb')} MB); database {p.get('db')}"]
    if name == "scaling":
        return [f"{r['subscribers']:,}: " + (
            "not run: " + r.get("reason", "") if not r.get("run") else
            f"{_pcts(r.get('due_to_handoff_seconds'))}; wall {r.get('wall_seconds')} s"
            + ("; timed out" if r.get("timed_out") else ""))
            for r in p.get("runs", [])]
    return []


def _lost(result: dict) -> list[str]:
    """A warning for each side whose run lost its database for a while (a server restart)."""
    found = []

    def walk(label: str, node) -> None:
        if isinstance(node, dict):
            if node.get("database_connection_lost"):
                found.append(label)
            for key, value in node.items():
                walk(key if label == "result" else label, value)
        elif isinstance(node, list):
            for value in node:
                walk(label, value)
    walk("result", {k: result.get(k) for k in ("platform", "peer", "limit")})
    return [f"**warning**: the {side} run lost its database connection for a while (a server "
            "restart by other work on the machine); its figures include the outage"
            for side in dict.fromkeys(found)]


def _load(result: dict) -> list[str]:
    load = result.get("load_average")
    if not load:
        return []
    return [f"machine load average (1 min) {load['before'][0]:g} before, "
            f"{load['after'][0]:g} after, on {(result.get('machine') or {}).get('cpus', '?')} CPUs"]


def details_section(results: list[dict]) -> str:
    parts = []
    for r in results:
        lines = details(r) + _lost(r) + _load(r)
        if lines:
            parts.append(f"**{r['scenario']}**\n\n" + "\n".join(f"- {_cell(x)}" for x in lines))
    return ("## Details\n\n" + "\n\n".join(parts)) if parts else ""


def draw(results: list[dict], img_dir: Path) -> list[tuple[str, Path]]:
    """Each scenario's plot as (caption, path); scenarios with nothing to draw are left out."""
    from bench import plots

    drawn = []
    for r in results:
        fn = plots.DRAW.get(r.get("scenario"))
        if fn is None:
            continue
        path = img_dir / f"bench-{r['scenario']}.png"
        caption = fn(r, path)
        if caption:
            drawn.append((caption, path))
    return drawn


def render(results: list[dict], images: list[tuple[str, Path]], doc: Path = DOC,
           analysis: str = "") -> str:
    """The whole of docs/benchmarks.md; ``analysis`` (hand-written: what limits the platform,
    with the profile that shows it) goes in as it is, after the details."""
    pictures = "\n\n".join(f"![{caption}]({_relative(path, doc)})\n\n*{caption}*"
                           for caption, path in images)
    return "\n\n".join(p for p in (
        "# Benchmarks",
        "Generated by `python -m bench.report` from `bench/results/*.json` (written by "
        "`make bench` / `hysbys bench SCENARIO`); do not edit by hand.  Each scenario measured "
        "the platform and its comparison points in the same run on the same machine.",
        "## Results", table(results) if results else "_No results yet: run `make bench`._",
        "Ratios are oriented so that more is better for the platform except where noted:\n\n"
        + ratio_notes(results) if results else "",
        details_section(results), analysis.strip(), "## Plots" if pictures else "", pictures,
        METHOD.strip()) if p) + "\n"


def _relative(path: Path, doc: Path) -> str:
    try:
        return str(path.resolve().relative_to(doc.resolve().parent))
    except ValueError:
        return str(path)


METHOD = """
## Method

**The stack.** RabbitMQ and PostgreSQL on 127.0.0.1; each run gets its own
RabbitMQ vhost and PostgreSQL database, removed afterwards (`bench/env.py`).
The platform runs as separate processes the way docker-compose runs it
(`bench/procs.py`): a notify, scheduler and inbound worker, the ticker, and the
three APIs under gunicorn.  Providers are the in-process simulator, which
counts every call (`hysbys_provider_calls_total` on the notify worker's
/metrics).  Peak RSS is sampled every 0.25 s per service, a gunicorn master and
its workers counted together.

**bin-night.** 22 council tenants share 100,000 subscribers; each schedules a
broadcast due 5 s ahead (`bench/platform_run.py` creates tenants through the
admin API and bulk-loads subscribers into the scheduler's schema with COPY; that
set-up is not timed).  The figure is notifications per second from the due time
to the last provider hand-off (`sent_at` in notify's table), with p50/p95/p99 of
due → hand-off and provider calls per notification (exactly 1.000).

- **Peer** (`bench/peer_celery.py`): GOV.UK Notify's design reduced to its
  sending core: a PostgreSQL row and one Celery task per notification on the same
  RabbitMQ, the worker (prefork, one process per core, `acks_late`) loading the
  row, calling the same simulator and updating the row.  Notify uses two tasks per
  notification (save, then deliver); one is the peer's best case.  Its clock starts
  when the first row is inserted.
- **Limit** (`bench/limit_kombu.py`): raw kombu, no application work: the same
  number of persistent messages of an event's size published with confirms
  (waited for per 500, as the platform's relay does) and consumed with acks.

**scaling.** bin-night's platform run at 10,000, 100,000 and 1,000,000
subscribers.  The scenario has a wall-time cap (20 minutes unless
`HYSBYS_BENCH_SCALING_CAP` says otherwise: the 1,000,000 run needs about an hour
on two cores, so the recorded run set 4,800 s); a size whose estimated time (the
previous size's, scaled linearly) would not fit in what is left is recorded as not
run, and nothing is extrapolated.  Goals: the rate at each
size at least 0.8× the rate at the size before (time grows linearly), and every
process's peak RSS at the largest size within 1.25× the smallest's (flat memory).

**fairness.** One council broadcasts to 50,000 subscribers; from its due time to
its last hand-off, a health board posts an urgent appointment reminder through
the API (`POST /v2/notifications/sms`, `"urgent": true`) every 0.5 s.  Each
figure is the reminder's `sent_at` minus the moment its request was sent.
Goal: p99 under 1 s.  The peer figure is the same message inserted and published
every 0.5 s while the peer sends the same broadcast (the peer has one FIFO queue);
the limit is the same urgent POSTs on the same stack, idle, just before the
broadcast.

**api-ingest / inbound-ingest.** An open-loop load generator on 127.0.0.1
(`bench/loadgen.py`; latency counted from when each request was due, so a slow
server cannot hide its queue) offers rising rates for 5 s each to
`POST /v2/notifications/sms` with a valid JWT, or to signed Twilio webhooks; the
figure is the highest rate held (no errors, ≥ 95% of the offered rate, p99 under
100 ms).  The limit is a bare Flask JSON endpoint served the same way (gunicorn,
2 workers × 8 threads).  The peer figure is GOV.UK Notify's 360 requests/s across
its fleet in 2018.  The ramp runs twice: first with the whole platform running
and sending everything it accepts on the same two cores, then with the pipeline
stopped (workers, dispatcher, ticker) for the API's own ceiling, as on a deployment
whose APIs have machines of their own; the second ramp counts that every request
answered 201/200 was stored.  Goals (issue 16): api-ingest ≥ 500 req/s with the
pipeline and ≥ 1,000 alone; inbound-ingest ≥ 250 and ≥ 500.  The ratio to the bare
endpoint is reported beside them (0.5× is the moonshot).

**scheduler-memory.** `bench/scheduler_memory.py`: a tenant with 1,000,000
subscribers on 22 fortnightly rounds, one collection campaign; in a fresh
process the scheduler plans the evening and the ticker emits its requests to the
outbox.  The figure is that process's own peak RSS (`VmHWM`; goal under 150 MB)
and the time, and the run must emit every request of the evening (the count the rounds'
rules give; a run that emitted none once passed on memory alone); the limit is the
same process's RSS after imports.  Not
`ru_maxrss`: Linux carries that over from the process that started this one, so
runs before 26 November 2026 reported the bench process's size (171 MB) as both.  GOV.UK Notify has no
scheduler, so there is no peer figure.

**Decisions** (where the issue left it open):

- Ratios read "more is better": throughput platform ÷ comparison; for fairness,
  the comparison's p99 ÷ the platform's; for scheduler-memory (lower is better),
  peak ÷ the after-imports floor.  Each results file has a `summary.ratio_note`.
- The peer's clock starts when its first row is inserted (its "ticker firing"),
  the platform's at the broadcasts' due time: both include creating the rows.
- Percentiles are nearest-rank (`percentile_disc` in PostgreSQL).
- Peak RSS is per service: a gunicorn master and its workers are summed.
- scaling: "linear" means the rate at each size is at least 0.8× the rate at the
  size before; "flat" means each service's peak RSS at the largest completed size
  is within 1.25× the smallest's.  A size cut short by the cap is recorded with
  what it managed and left out of the judgement and the plots.
- fairness: the limit is the same urgent request on the same stack with nothing
  else to send, measured just before the broadcast; a request that fails or a
  reminder not handed off within 60 s of the broadcast's end misses the goal.
- A missed goal is written to the results file as `shortfall`: for each goal the
  measured value, the goal, the gap (`by`) and the factor still needed.

**Why the same run.** The machine is shared and noisy; a platform figure from
one hour and a peer figure from another would make the ratio a measure of the
noise.  Each scenario measures its comparison points one after the other inside
one invocation, on the same data size, so they see the same machine.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--no-plots", action="store_true",
                        help="the page without plots (no matplotlib needed)")
    args = parser.parse_args(argv)
    results = load(args.results)
    images = [] if args.no_plots else draw(results, args.out.parent / "img")
    notes = args.results / ANALYSIS
    analysis = notes.read_text() if notes.exists() else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results, images, args.out, analysis))
    print(f"wrote {args.out} ({len(results)} scenarios, {len(images)} plots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
