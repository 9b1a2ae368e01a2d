"""PostgreSQL restarts mid-run: every connection of every process is dropped at once.

Handlers that fail are retried through the delay queues, the dispatcher and the
ticker retry their loops, and the outbox holds what the relay could not mark.
A chunk whose provider calls finished while the database was away cannot record
its outcome: the sweeper ends those as ``technical-failure`` "outcome unknown"
and never sends them again (at most once to the provider, never lost).
"""
from __future__ import annotations

import pytest

from tests.faults import infra
from tests.faults.harness import TENANTS, assert_exactly_once

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_a_database_restart_mid_run_loses_nothing_and_calls_no_provider_twice(start_run):
    run = start_run()
    run.add_tenants([{}] * TENANTS)
    run.begin()

    run.wait_handled(0.3)
    infra.restart_postgres()
    tally = run.wait_settled()

    calls = run.proc("notify-worker").metric("hysbys_provider_calls_total", {"provider": "simulator"})
    tally = run.tally(simulator_calls=int(calls))
    run.report("test_a_database_restart_mid_run_loses_nothing_and_calls_no_provider_twice",
               "PostgreSQL restarted (pg_ctlcluster restart -m fast)", tally)
    assert_exactly_once(tally, n=run.n)
    assert tally.by_status.get("delivered", 0) + tally.outcome_unknown == run.n, tally.by_status
    assert tally.provider_calls == tally.handed_off + tally.outcome_unknown or \
        tally.provider_calls == tally.handed_off
