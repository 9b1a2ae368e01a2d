"""/readyz's verdict: the database decides for an API; the broker too for a worker."""
from __future__ import annotations

from shared.http import readiness_status

BROKER_DOWN = {"database": "ok", "broker": "error: OperationalError"}


def test_all_ok_is_ready():
    assert readiness_status({"database": "ok", "broker": "ok"}) == ("ok", 200)


def test_an_api_without_its_broker_is_degraded_but_ready():
    assert readiness_status(BROKER_DOWN) == ("degraded", 200)


def test_a_worker_without_its_broker_is_not_ready():
    assert readiness_status(BROKER_DOWN, broker_required=True) == ("unavailable", 503)


def test_without_a_writable_database_nothing_is_ready():
    down = {"database": "error: OSError: disk full", "broker": "ok"}
    assert readiness_status(down) == ("unavailable", 503)
    assert readiness_status(down, broker_required=True) == ("unavailable", 503)
