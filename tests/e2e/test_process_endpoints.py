"""Workers, the dispatcher and the ticker answer /metrics, /healthz and /readyz.

The real commands, each on an ephemeral HYSBYS_METRICS_PORT (compose and Kubernetes
set it for every such process); and the liveness verdict of a process whose loop died.
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from shared.metrics import serve_process_endpoints
from tests.conftest import eventually, free_port
from tests.e2e.test_serve_metrics import ROOT, _env, _try


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:   # noqa: S310 - 127.0.0.1 only
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("argv", [["ticker"], ["dispatcher"], ["worker", "inbound"]],
                         ids=["ticker", "dispatcher", "inbound-worker"])
def test_every_process_without_an_api_serves_metrics_and_probes(tmp_path, argv):
    env = _env(tmp_path, free_port())
    port = free_port()
    env["HYSBYS_METRICS_PORT"] = str(port)
    subprocess.run([sys.executable, "-m", "services.cli", "db", "upgrade"], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    log = open(tmp_path / "proc.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", *argv], env=env, cwd=ROOT,
                            stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _try(lambda: _get(f"{base}/healthz")), timeout=60,
                   message=f"hysbys {' '.join(argv)} answering")
        assert _get(f"{base}/healthz") == (200, json.dumps({"status": "ok"}))
        code, body = _get(f"{base}/readyz")
        assert code == 200, body
        assert json.loads(body)["checks"] == {"database": "ok", "broker": "ok"}
        code, body = _get(f"{base}/metrics")
        assert code == 200 and "# TYPE hysbys_events_published_total counter" in body
        assert _get(f"{base}/nothing-here")[0] == 404
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_a_process_whose_loop_died_is_not_alive_and_without_its_broker_is_not_ready():
    port = free_port()
    alive = {"value": True}
    server = serve_process_endpoints(
        "127.0.0.1", port, alive=lambda: alive["value"],
        readiness=lambda: {"database": "ok", "broker": "error: ConnectionRefusedError"})
    try:
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/healthz")[0] == 200
        alive["value"] = False
        code, body = _get(f"{base}/healthz")
        assert code == 503 and json.loads(body)["status"] == "unavailable"
        code, body = _get(f"{base}/readyz")      # a worker needs its broker: not ready
        assert code == 503 and json.loads(body)["status"] == "unavailable"
    finally:
        server.shutdown()
        server.server_close()
