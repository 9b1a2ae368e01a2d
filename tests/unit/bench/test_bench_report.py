"""docs/benchmarks.md is rendered from the results files: one table row per scenario."""
from __future__ import annotations

import json

from bench import report
from bench.common import Goal, envelope

MACHINE = {"cpus": 2, "memory_gib": 23.5, "python": "3.11.9", "platform": "Linux",
           "processor": "x86_64"}


def bin_night(rate: float = 900.0, peer: float = 300.0, limit: float = 1500.0) -> dict:
    goals = [Goal("ratio_vs_peer", rate / peer, 3.0, unit="×"),
             Goal("ratio_vs_limit", rate / limit, 0.5, unit="×")]
    return envelope("bin-night", MACHINE, {"notifications_per_second": rate,
                                           "provider_calls_per_notification": 1.0},
                    {"notifications_per_second": peer}, {"messages_per_second": limit},
                    ratio_vs_peer=rate / peer, ratio_vs_limit=rate / limit, goals=goals,
                    summary={"metric": "notifications/s", "platform": f"{rate:,.0f}/s",
                             "peer": f"{peer:,.0f}/s", "limit": f"{limit:,.0f}/s",
                             "goal": "≥ 3× peer", "ratio_note": "platform ÷ peer"},
                    wall_seconds=754.0)


def fairness_missed() -> dict:
    return envelope("fairness", MACHINE, {}, {}, {}, ratio_vs_peer=40.0, ratio_vs_limit=0.25,
                    goals=[Goal("urgent_p99_seconds", 3.0, 2.0, at_least=False, unit=" s")],
                    summary={"metric": "urgent p99", "platform": "3.00 s", "peer": "120 s",
                             "limit": "0.75 s", "goal": "p99 < 2 s"})


def write(tmp_path, *results: dict):
    for r in results:
        (tmp_path / f"{r['scenario']}.json").write_text(json.dumps(r))
    return report.load(tmp_path)


def test_every_results_file_becomes_one_row_in_the_issues_order(tmp_path):
    results = write(tmp_path, fairness_missed(), bin_night())

    lines = report.table(results).splitlines()

    assert len(lines) == 2 + 2
    assert lines[2].startswith("| bin-night |")
    assert lines[3].startswith("| fairness |")


def test_a_row_shows_the_figures_the_ratios_the_goal_and_the_machine(tmp_path):
    (results,) = [write(tmp_path, bin_night())]

    cells = report.row(results[0])

    assert cells[:5] == ["bin-night", "notifications/s", "900/s", "300/s", "1,500/s"]
    assert cells[5:8] == ["3×", "0.6×", "≥ 3× peer"]
    assert cells[8] == "yes"
    assert cells[9] == "2 CPU, 23.5 GiB, x86_64, Python 3.11.9"
    assert cells[10] == "12.6 min"


def test_a_missed_goal_says_by_how_much(tmp_path):
    results = write(tmp_path, fairness_missed())

    met = report.row(results[0])[8]

    assert met == "no: urgent_p99_seconds 3.0 (goal < 2 s, off by 1.5×)"
    assert results[0]["shortfall"]["urgent_p99_seconds"]["by"] == 1.0


def test_a_result_without_a_summary_renders_dashes_not_an_error():
    cells = report.row({"scenario": "odd", "goal_met": False})

    assert cells[0] == "odd"
    assert cells[1:5] == ["—", "—", "—", "—"]
    assert cells[8] == "no"


def test_a_pipe_in_a_figure_does_not_break_the_table(tmp_path):
    result = bin_night()
    result["summary"]["platform"] = "900/s | fast"

    line = report.table(write(tmp_path, result)).splitlines()[2]

    assert "900/s \\| fast" in line


def test_the_document_holds_the_table_the_plots_and_the_method(tmp_path):
    results = write(tmp_path, bin_night())
    image = tmp_path / "docs" / "img" / "bench-bin-night.png"

    text = report.render(results, [("throughput", image)], doc=tmp_path / "docs" / "benchmarks.md")

    assert "| bin-night |" in text
    assert "![throughput](img/bench-bin-night.png)" in text
    assert "## Method" in text
    assert "- **bin-night**: platform ÷ peer" in text


def test_no_results_yet_says_how_to_make_them(tmp_path):
    text = report.render(report.load(tmp_path), [])

    assert "No results yet" in text


def test_the_details_show_percentiles_provider_calls_and_how_busy_the_machine_was():
    result = bin_night()
    result["platform"].update({"due_to_handoff_seconds": {"p50": 1.0, "p95": 2.5, "p99": 3.0,
                                                          "max": 3.5},
                               "provider_calls": 1000.0, "handed_off": 1000})
    result["load_average"] = {"before": [0.5, 0.4, 0.3], "after": [1.9, 1.0, 0.5]}

    text = report.details_section([result])

    assert "platform due → hand-off: p50 1.00 s, p95 2.50 s, p99 3.00 s, max 3.50 s" in text
    assert "provider calls per notification: 1.000 (1,000 calls, 1,000 hand-offs)" in text
    assert "machine load average (1 min) 0.5 before, 1.9 after, on 2 CPUs" in text


def test_a_run_that_lost_its_database_says_so():
    result = bin_night()
    result["peer"]["database_connection_lost"] = 3

    text = report.details_section([result])

    assert "the peer run lost its database connection" in text
    assert "the platform run lost" not in text


def test_the_hand_written_analysis_beside_the_results_is_kept_in_the_page(tmp_path):
    write(tmp_path, bin_night())
    (tmp_path / "analysis.md").write_text("## What limits bin-night\n\nThe notify worker.\n")
    out = tmp_path / "docs" / "benchmarks.md"

    report.main(["--results", str(tmp_path), "--out", str(out), "--no-plots"])

    text = out.read_text()
    assert "## What limits bin-night\n\nThe notify worker." in text
    assert text.index("## What limits bin-night") < text.index("## Method")


def test_cpu_per_notification_is_each_process_and_server_between_two_readings_and_the_total():
    from bench.procs import cpu_per_notification

    per = cpu_per_notification({"notify-worker": 10.0, "postgresql": 100.0},
                               {"notify-worker": 40.0, "postgresql": 130.0, "rabbitmq": 5.0},
                               10_000)
    assert per == {"notify-worker": 3.0, "postgresql": 3.0, "rabbitmq": 0.5, "total": 6.5}
    result = bin_night()
    result["platform"]["cpu_ms_per_notification"] = per
    [line] = [d for d in report.details(result) if d.startswith("CPU per notification")]
    assert "6.50 in all" in line and "notify-worker 3.00" in line and "rabbitmq 0.50" in line


def test_the_servers_cpu_is_read_from_their_own_processes():
    from bench.procs import server_cpu_seconds

    first = server_cpu_seconds()
    assert set(first) == {"postgresql", "rabbitmq"}
    assert first["postgresql"] > 0 and first["rabbitmq"] > 0   # both run here and in CI
    assert server_cpu_seconds()["postgresql"] >= first["postgresql"]


def test_the_peers_cpu_per_notification_is_shown_beside_the_platforms():
    result = bin_night()
    result["peer"]["cpu_ms_per_notification"] = {"celery-workers": 1.2, "postgresql": 0.4,
                                                 "total": 1.6}
    [line] = [d for d in report.details(result) if d.startswith("peer's CPU per notification")]
    assert "1.60 in all" in line and "celery-workers 1.20" in line


def test_the_peers_cpu_counts_its_workers_its_firing_and_the_servers():
    import subprocess
    import sys
    import time

    from bench.procs import peer_cpu_seconds

    child = subprocess.Popen([sys.executable, "-c", "sum(range(3_000_000)); input()"],
                             stdin=subprocess.PIPE)
    try:
        time.sleep(0.5)         # the child's sum is done by then; it waits on its stdin
        seconds = peer_cpu_seconds(child)
    finally:
        child.communicate(b"\n", timeout=10)
    assert set(seconds) == {"celery-workers", "fire (bench process)", "postgresql", "rabbitmq"}
    assert seconds["celery-workers"] > 0.01
    assert seconds["fire (bench process)"] > 0 and seconds["postgresql"] > 0


def test_the_ingest_goals_are_the_rates_with_the_pipeline_and_api_alone():
    from bench.ingest import ingest_result

    def ramp(held: float) -> dict:
        step = {"offered_rps": held, "achieved_rps": held, "sent": 100, "ok": 100, "errors": 0,
                "p50_ms": 5.0, "p99_ms": 20.0}
        return {"max_rate_held_rps": held, "steps": [step]}

    result = ingest_result("api-ingest", {**ramp(600), "api_alone": ramp(900)}, ramp(4000))
    assert not result["goal_met"]
    assert set(result["shortfall"]) == {"requests_per_second_api_alone"}   # 900 < 1,000; 600 ≥ 500
    assert result["ratio_vs_limit"] == 0.15
    inbound = ingest_result("inbound-ingest", {**ramp(300), "api_alone": ramp(500)}, ramp(4000))
    assert inbound["goal_met"]
