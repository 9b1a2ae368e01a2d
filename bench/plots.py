"""The benchmark plots (PNG, matplotlib's Agg backend: no display needed).

Each function draws one scenario's results into ``path`` and returns a caption,
or None when the results hold nothing to draw.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first

BLUE, GREY, ORANGE = "#1d70b8", "#6f777b", "#d4351c"    # GOV.UK palette


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bin_night(result: dict, path: Path) -> str | None:
    bars = [("platform", result["platform"].get("notifications_per_second"), BLUE),
            ("peer (Celery)", result["peer"].get("notifications_per_second"), GREY),
            ("limit (raw kombu)", result["limit"].get("messages_per_second"), ORANGE)]
    bars = [b for b in bars if b[1]]
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    for i, (_, value, _) in enumerate(bars):
        ax.text(value, i, f" {value:,.0f}/s", va="center")
    ax.set_xlabel("notifications (messages) per second")
    ax.set_title(f"bin-night: {result.get('subscribers', 0):,} subscribers")
    ax.invert_yaxis()
    ax.set_xlim(0, max(b[1] for b in bars) * 1.3)
    _save(fig, path)
    return "bin-night throughput: the platform, the peer design and the broker's own limit"


def scaling(result: dict, path: Path) -> str | None:
    every = result["platform"].get("runs", [])
    runs = [r for r in every if r.get("run") and not r.get("timed_out")
            and r.get("seconds_due_to_last_handoff")]
    if not runs:
        return None
    n = [r["subscribers"] for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.plot(n, [r["seconds_due_to_last_handoff"] for r in runs], "o-", color=BLUE,
              label="measured")
    first = runs[0]
    left.plot(n, [first["seconds_due_to_last_handoff"] * x / n[0] for x in n], "--", color=GREY,
              label=f"linear from {n[0]:,}")
    left.set(xscale="log", yscale="log", xlabel="subscribers",
             ylabel="seconds, due → last hand-off", title="time")
    left.legend()
    for name in runs[0]["peak_rss_mb"]:
        right.plot(n, [r["peak_rss_mb"].get(name) for r in runs], "o-", label=name)
    right.set(xscale="log", xlabel="subscribers", ylabel="peak RSS, MB", title="memory")
    right.set_ylim(bottom=0)
    right.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    for ax in (left, right):
        ax.set_xticks(n, [f"{x:,}" for x in n])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    left.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:,.0f}"))
    left.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    left_out = [f"{r['subscribers']:,} " + ("timed out" if r.get("run") else "not run")
                for r in every if r not in runs]
    if left_out:
        fig.suptitle("wall-time cap: " + ", ".join(left_out), fontsize=9)
    _save(fig, path)
    return "scaling: time against subscribers (log-log, dashed = linear) and peak RSS per service"


def fairness(result: dict, path: Path) -> str | None:
    series = [("platform, during the broadcast", result["platform"].get("urgent", {}), BLUE),
              ("platform, idle (limit)", result["limit"], ORANGE),
              ("peer, during the broadcast", result["peer"].get("urgent", {}), GREY)]
    series = [(label, sorted(s.get("latencies_seconds") or []), c) for label, s, c in series]
    series = [s for s in series if s[1]]
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for label, values, colour in series:
        ax.step(values, [(i + 1) / len(values) for i in range(len(values))], where="post",
                label=label, color=colour)
    ax.axvline(1.0, color="black", linestyle=":", label="goal: p99 < 1 s")
    ax.set(xscale="log", xlabel="seconds, request → provider hand-off",
           ylabel="share of urgent reminders", title="fairness: an urgent reminder during bin night")
    ax.legend(fontsize=8)
    _save(fig, path)
    return "fairness: distribution of the urgent reminder's time to hand-off"


def ingest(result: dict, path: Path) -> str | None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    drawn = False
    for label, side, colour in (("platform", result["platform"], BLUE),
                                ("bare Flask (limit)", result["limit"], ORANGE)):
        steps = [s for s in side.get("steps", []) if s.get("p99_ms") not in (None, float("inf"))]
        if steps:
            drawn = True
            ax.plot([s["offered_rps"] for s in steps], [s["p99_ms"] for s in steps], "o-",
                    color=colour, label=label)
    if not drawn:
        plt.close(fig)
        return None
    ax.axhline(100, color="black", linestyle=":", label="p99 = 100 ms")
    ax.axvline(360, color=GREY, linestyle="--", label="Notify 2018: 360/s")
    ax.set(xlabel="offered requests per second", ylabel="p99 latency, ms", yscale="log", xscale="log",
           title=result["scenario"])
    ax.legend(fontsize=8)
    _save(fig, path)
    return f"{result['scenario']}: p99 latency under rising offered load"


DRAW = {"bin-night": bin_night, "scaling": scaling, "fairness": fairness,
        "api-ingest": ingest, "inbound-ingest": ingest}
