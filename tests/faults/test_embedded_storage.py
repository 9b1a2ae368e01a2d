"""The embedded default's SQLite files on a full disk and on a read-only file system.

A tmpfs of 16 MiB stands in for ``./var``: filled to the last byte while the
platform runs, and remounted read-only before it starts.  Sends are refused while
the disk is full, nothing is half-written (no notification, no event), and the
platform carries on when space comes back.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import requests
import sqlalchemy as sa
from notifications_python_client.authentication import create_jwt_token

from services.embedded import Platform
from tests.conftest import _base_settings, eventually
from tests.faults import infra
from tests.faults.harness import ROOT

pytestmark = [pytest.mark.slow]


def _auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


@pytest.fixture
def var(tmp_path):
    with infra.tmpfs(tmp_path / "var") as path:
        yield path


@pytest.fixture
def sending(var):
    """An embedded platform on the tmpfs, with a tenant and a template."""
    platform = Platform(_base_settings(var))
    platform.migrate()
    platform.start()
    url = platform.urls()["notify"]
    tenant = requests.post(url + "/admin/tenants", json={"name": "Ynys", "slug": "ynys",
                                 # no quiet hours: run at 21:00 or later, texts would wait till 08:00
                                 "config": {"quiet_hours": None}}, timeout=10,
                           headers={"Authorization": "Bearer test-admin-token"}).json()
    template = requests.post(url + "/api/templates", headers=_auth(tenant["api_key"]), timeout=10,
                             json={"name": "bins", "type": "sms",
                                   "body": {"en": "Bins tomorrow", "cy": "Biniau yfory"}}).json()

    def send(number: str, reference: str) -> requests.Response:
        return requests.post(url + "/v2/notifications/sms", headers=_auth(tenant["api_key"]),
                             timeout=10, json={"phone_number": number, "reference": reference,
                                               "template_id": template["id"]})
    yield platform, send
    platform.stop()


def _rows(platform: Platform, sql: str) -> list:
    with platform.notify.runtime.db.read() as session:
        return list(session.execute(sa.text(sql)))


def test_a_full_disk_refuses_sends_writes_nothing_half_way_and_recovers(var, sending):
    platform, send = sending
    assert send("07700900000", "before").status_code == 201
    eventually(lambda: _rows(platform, "SELECT 1 FROM notifications WHERE status = 'delivered'"))
    outbox_before = _rows(platform, "SELECT count(*) FROM outbox")[0][0]

    filler = infra.fill(var)
    refused = [send("07700900111", f"full-{i}") for i in range(3)]
    os.remove(filler)

    assert all(r.status_code >= 500 for r in refused), [r.status_code for r in refused]
    assert all(set(r.json()) == {"status_code", "errors"} for r in refused)
    assert _rows(platform, "SELECT count(*) FROM notifications WHERE reference LIKE 'full-%'") == [(0,)]
    assert _rows(platform, "SELECT count(*) FROM outbox")[0][0] == outbox_before
    assert send("07700900222", "after").status_code == 201
    eventually(lambda: _rows(platform, "SELECT 1 FROM notifications WHERE reference = 'after' "
                                       "AND status = 'delivered'"))
    assert {r[0] for r in _rows(platform, "SELECT reference FROM notifications")} == {"before", "after"}


def test_a_full_disk_is_a_503_that_says_the_database_cannot_store_it(var, sending):
    """Finding F2 (docs/reliability.md), fixed: a 503 that names the database, not a bare 500."""
    _platform, send = sending
    filler = infra.fill(var)
    try:
        refused = send("07700900111", f"full-{uuid.uuid4().hex[:6]}")
    finally:
        os.remove(filler)
    assert refused.status_code == 503, refused.text
    assert "database" in refused.json()["errors"][0]["message"].lower()


def test_a_read_only_database_stops_hysbys_with_one_clear_line(var):
    """Finding F2 (docs/reliability.md), fixed: one clear line, not a traceback."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HYSBYS_")},
           "HYSBYS_VAR_DIR": str(var), "PYTHONPATH": str(ROOT)}
    upgrade = [sys.executable, "-m", "services.cli", "db", "upgrade"]
    subprocess.run(upgrade, env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)
    infra.remount(var, "ro")
    try:
        again = subprocess.run(upgrade, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        infra.remount(var, "rw")
    assert again.returncode != 0
    assert "Traceback" not in again.stderr, again.stderr[-2000:]
    assert again.stderr.startswith("hysbys:") and "database" in again.stderr, again.stderr
