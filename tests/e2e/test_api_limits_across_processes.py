"""Two real API processes (`hysbys serve notify`, two gunicorn workers) on one database
never send past a tenant's daily limit between them, and a key revoked through one is
refused by both at once.

Each worker has its own tenant cache and its own leases of the daily allowance
(services/notify/limits.py); requests go on fresh connections, so both workers serve
them (checked by their metrics files, one per worker that recorded a request)."""
from __future__ import annotations

import datetime as dt
import http.client
import json
import subprocess
import sys

from notifications_python_client.authentication import create_jwt_token

from services.notify import limits
from tests.conftest import eventually, free_port
from tests.e2e.test_serve_metrics import ROOT, _env, _get, _try, _worker_pids

PER_DAY = 300          # a lease is min(50, 300 // 100) = 3 messages
LEASE = 3
WORKERS = 2
SENDS = 340


def _call(port: int, method: str, path: str, body: dict | None, headers: dict):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json", "Connection": "close",
                              **headers})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def _bearer(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


def _today():
    return limits.day_window(dt.datetime.now(dt.UTC))


def test_two_api_processes_hold_the_daily_limit_and_a_revocation_between_them(tmp_path):
    port = free_port()
    env = _env(tmp_path, port)
    cli = [sys.executable, "-m", "services.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    created = json.loads(subprocess.run(
        [*cli, "tenants", "create", "--name", "Penfro", "--slug", "penfro", "--json"],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([*cli, "serve", "notify", "--workers", str(WORKERS), "--threads", "2"],
                            env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        eventually(lambda: _try(lambda: _get(f"http://127.0.0.1:{port}/healthz")), timeout=60,
                   message="hysbys serve answering")
        admin = {"Authorization": "Bearer test-admin-token"}
        assert _call(port, "PATCH", f"/admin/tenants/{created['id']}",
                     {"daily_message_limit": PER_DAY, "quiet_hours": None}, admin)[0] == 200
        live = _bearer(created["api_key"])
        status, template = _call(port, "POST", "/api/templates", {
            "name": "t", "type": "sms", "body": {"cy": "Helo", "en": "Hello"}}, live)
        assert status == 201, template
        first_day = _today()
        outcomes: dict[int, int] = {}
        for _ in range(SENDS):
            status, _ = _call(port, "POST", "/v2/notifications/sms", {
                "phone_number": "07700900111", "template_id": template["id"]}, live)
            outcomes[status] = outcomes.get(status, 0) + 1
        days = 1 if _today() == first_day else 2      # a London midnight in between
        multiproc = tmp_path / "var" / "metrics" / f"notify-{port}"
        assert len(_worker_pids(multiproc)) == WORKERS, "both processes served sends"
        assert set(outcomes) <= {201, 429}, outcomes
        assert outcomes[201] <= PER_DAY * days, outcomes
        if days == 1:
            assert outcomes[201] >= PER_DAY - WORKERS * (LEASE - 1), outcomes

        # a key revoked through one process is refused by both at once
        status, key = _call(port, "POST", f"/admin/tenants/{created['id']}/keys",
                            {"name": "second", "key_type": "live"}, admin)
        assert status == 201, key
        second = _bearer(key["api_key"])
        assert [_call(port, "GET", "/v2/notifications", None, second)[0]
                for _ in range(10)] == [200] * 10
        assert _call(port, "DELETE", f"/admin/tenants/{created['id']}/keys/{key['id']}", None,
                     admin)[0] in (200, 204)
        refused = [_call(port, "GET", "/v2/notifications", None, second)[0] for _ in range(20)]
        assert refused == [403] * 20
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
