"""RabbitMQ breaks mid-run: its connections are closed from the broker's side, then the
broker application stops for ten seconds and starts again.  Nothing is lost, nothing
reaches the provider twice, every outcome event reaches the scheduler and inbound."""
from __future__ import annotations

import time

import pytest

from tests.faults import infra
from tests.faults.harness import TENANTS, assert_exactly_once

pytestmark = [pytest.mark.slow, pytest.mark.integration]

OUTAGE_SECONDS = 10


def test_closed_connections_and_a_stopped_broker_lose_nothing_and_send_nothing_twice(start_run):
    run = start_run()
    run.add_tenants([{}] * TENANTS)
    run.begin()

    run.wait_handled(0.2)
    closed = infra.close_broker_connections(run.broker_url)
    run.wait_handled(0.45)
    with infra.broker_stopped():
        time.sleep(OUTAGE_SECONDS)
    run.wait_settled()

    calls = run.proc("notify-worker").metric("hysbys_provider_calls_total", {"provider": "simulator"})
    tally = run.tally(simulator_calls=int(calls))
    run.report("test_closed_connections_and_a_stopped_broker_lose_nothing_and_send_nothing_twice",
               f"close_all_connections ({closed} connections), then stop_app for {OUTAGE_SECONDS} s",
               tally)
    assert closed > 0, "the platform had no connections to close"
    assert_exactly_once(tally, n=run.n)
    assert tally.by_status == {"delivered": run.n}
    assert tally.provider_calls == run.n
