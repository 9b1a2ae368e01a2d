"""Fixtures for the operators' unit tests: notify on SQLite and the in-memory broker,
with /ops and /open-data registered, and the scheduler's /metrics served on a port."""
from __future__ import annotations

import pytest
from ops_support import ADMIN, FakeClock, notify_app, scheduler_metrics

from services.notify.wiring import build
from shared.metrics import METRICS
from tests.conftest import free_port


@pytest.fixture
def notify(embedded_settings):
    svc = build(embedded_settings)
    svc.runtime.migrate()
    with svc.runtime.bus.connection() as conn:
        svc.runtime.bus.declare(conn)
    yield svc
    svc.runtime.db.dispose()


@pytest.fixture(scope="session")
def scheduler_url():
    """The scheduler's /metrics reporting 12 s of lag (one server for the session: stopping
    one takes half a second)."""
    port = free_port()
    server = scheduler_metrics(port, lag_seconds=12.0)
    yield f"http://127.0.0.1:{port}/metrics"
    server.shutdown()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def app(notify, scheduler_url, clock):
    # no cache: every request reads the figures afresh; the fake clock drives the rates
    return notify_app(notify, scheduler_url, cache_seconds=0, clock=clock)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def figures(client):
    """GET /ops/data.json as the operator."""
    def _get() -> dict:
        resp = client.get("/ops/data.json", headers=ADMIN)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.json
    return _get


@pytest.fixture
def metric():
    def _value(name: str, **labels) -> float | None:
        return METRICS.registry.get_sample_value(name, labels)
    return _value
