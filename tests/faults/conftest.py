"""Fixtures of the fault tests: a throwaway vhost and database, the platform as processes,
and the fakes of third-party providers as a process of their own."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import env
from tests.faults import infra
from tests.faults.harness import ROOT, FaultRun


@pytest.fixture
def infrastructure():
    """(database URL, broker URL), both made for this test and removed after it."""
    infra.ensure_broker_up()
    infra.ensure_postgres_up()
    with env.vhost("hysbys-fault") as amqp, env.database("hysbys_fault") as db:
        yield db, amqp
    infra.ensure_broker_up()
    infra.ensure_postgres_up()


@pytest.fixture
def start_run(infrastructure, tmp_path):
    """``start_run(**options)`` → a :class:`FaultRun`, stopped after the test.

    Process logs are in ``<tmp_path>/logs`` (pytest prints tmp_path on failure).
    """
    runs: list[FaultRun] = []

    def start(**options) -> FaultRun:
        db, amqp = infrastructure
        run = FaultRun.start(db, amqp, tmp_path / "logs", **options)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop()


@pytest.fixture
def fake_providers():
    """Fake Twilio and GOV.UK Notify in their own process: {"twilio": {url, credentials}, ...}."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.faults.fake_providers"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        yield info
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
