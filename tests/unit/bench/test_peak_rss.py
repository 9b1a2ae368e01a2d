"""The scheduler-memory figure is the measured process's own peak, not its parent's."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_a_small_process_started_by_a_big_one_reports_its_own_peak():
    big = bytearray(256 * 2**20)
    big[::4096] = b"\x01" * len(big[::4096])            # touch every page: resident
    out = subprocess.run(
        [sys.executable, "-c", "from bench.scheduler_memory import _rss_mb; print(_rss_mb())"],
        capture_output=True, text=True, check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    child_peak_mb = float(out.stdout.strip())
    assert 5 < child_peak_mb < 128, child_peak_mb     # ru_maxrss would say 256+ here
    del big
