"""`hysbys serve` (gunicorn, several worker processes) counts every request once on /metrics.

Each scrape reaches one gunicorn worker; in prometheus-client's single-process mode it
saw only its own requests (20 sent, 11 counted).  Here the real command runs with two
workers on an ephemeral port, requests are sent on fresh connections until both workers
have answered some, and /metrics must count exactly as many as were sent.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from cryptography.fernet import Fernet

from tests.conftest import eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
MIN_REQUESTS = 20
MAX_REQUESTS = 400   # bounded: two workers share the accepts long before this


def _env(tmp_path: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HYSBYS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"HYSBYS_DATABASE_URL": f"sqlite:///{tmp_path}/hysbys.db",
                "HYSBYS_BROKER_URL": "memory://", "HYSBYS_VAR_DIR": str(tmp_path / "var"),
                "HYSBYS_SECRET_KEY": Fernet.generate_key().decode(),
                "HYSBYS_ADMIN_TOKEN": "test-admin-token", "HYSBYS_NOTIFY_PORT": str(port),
                "HYSBYS_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)})
    return env


def _get(url: str) -> str:
    req = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(req, timeout=10) as resp:   # noqa: S310 - 127.0.0.1 only
        return resp.read().decode()


def _healthz_count(metrics_text: str) -> float:
    pattern = re.compile(r'^hysbys_http_request_duration_seconds_count\{([^}]*)\} (\S+)$', re.M)
    return sum(float(value) for labels, value in pattern.findall(metrics_text)
               if 'route="/healthz"' in labels)


def _worker_pids(directory: Path) -> set[str]:
    """The processes that have recorded a request: one histogram file per process."""
    return {m.group(1) for f in directory.glob("histogram_*.db")
            if (m := re.fullmatch(r"histogram_(\d+)\.db", f.name))}


def test_requests_spread_over_gunicorn_workers_are_all_counted(tmp_path):
    port = free_port()
    env = _env(tmp_path, port)
    subprocess.run([sys.executable, "-m", "services.cli", "db", "upgrade"], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    multiproc = tmp_path / "var" / "metrics" / f"notify-{port}"
    multiproc.mkdir(parents=True)
    (multiproc / "counter_1.db").write_bytes(b"left by an earlier run")   # must be cleaned
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "notify",
                             "--workers", "2", "--threads", "2"],
                            env=env, cwd=ROOT, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _try(lambda: _get(f"{base}/healthz")), timeout=60,
                   message="hysbys serve answering")
        sent = 1
        assert not (multiproc / "counter_1.db").exists()
        while len(_worker_pids(multiproc)) < 2 or sent < MIN_REQUESTS:
            assert sent < MAX_REQUESTS, "one gunicorn worker took every connection"
            _get(f"{base}/healthz")
            sent += 1
        # whichever worker answers the scrape, it reports every worker's requests
        for _ in range(4):
            assert _healthz_count(_get(f"{base}/metrics")) == sent
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert sent >= MIN_REQUESTS


def _try(call):
    try:
        return call() or True
    except OSError:
        return False
