"""Processes die with SIGKILL mid-run and are started again: the ticker while it emits,
the scheduler worker (which also relays the scheduler's outbox), the notify worker while
it hands notifications to the provider, a stand-alone relay and the inbound worker.

The provider is the fake Twilio in a process of its own, so its count of accepted
sends survives the notify worker's death.  Twilio answers ``sent`` (a receipt would
follow), so ``sent`` is a settled state here.  A chunk whose hand-off the kill cut
short ends ``technical-failure`` "outcome unknown": Twilio may have it, so it is
never sent again (at most one call, never two).
"""
from __future__ import annotations

import time

import pytest

from tests.faults.harness import TENANTS, assert_exactly_once, fake_stats

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PAUSE = 2.0   # seconds a killed process stays dead before it is started again


def _kill_and_restart(run, name: str, killed: list[str]) -> None:
    proc = run.proc(name)
    proc.kill()
    killed.append(name)
    time.sleep(PAUSE)
    proc.start()


def test_processes_killed_mid_batch_and_restarted_lose_nothing_and_send_nothing_twice(
        start_run, fake_providers):
    twilio = fake_providers["twilio"]
    run = start_run(fake_twilio_url=twilio["url"], extra_relay=True)
    run.add_tenants([{"providers": ["twilio"],
                      "provider_credentials": {"twilio": twilio["credentials"]}}] * TENANTS)
    run.begin()
    killed: list[str] = []

    run.wait_for(lambda: run.scalar("SELECT count(*) FROM scheduler.outbox "
                                    "WHERE event_type = 'notification.requested'") > 0,
                 "the ticker emitting")
    _kill_and_restart(run, "scheduler-ticker", killed)
    run.wait_handled(0.15)
    _kill_and_restart(run, "scheduler-worker", killed)
    run.wait_handled(0.35)
    _kill_and_restart(run, "notify-worker", killed)
    run.wait_handled(0.55)
    _kill_and_restart(run, "relay", killed)
    run.wait_handled(0.7)
    _kill_and_restart(run, "inbound-worker", killed)
    run.wait_settled(also_settled=("sent",))

    tally = run.tally(provider_accepted=fake_stats(twilio["url"])["accepted"])
    run.report("test_processes_killed_mid_batch_and_restarted_lose_nothing_and_send_nothing_twice",
               "SIGKILL + restart: " + ", ".join(killed), tally)
    assert_exactly_once(tally, n=run.n)
    assert set(tally.by_status) <= {"sent", "technical-failure"}, tally.by_status
    assert tally.by_status.get("technical-failure", 0) == tally.outcome_unknown
    assert tally.handed_off + tally.outcome_unknown == run.n
