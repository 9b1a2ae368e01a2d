"""The platform as separate processes on a throwaway vhost and database, to break and count.

Built on the benchmark harness (``bench.procs``, ``bench.platform_run``): the
same processes docker-compose runs, each started with ``python -m services.cli …``.
The notify worker is ``hysbys worker notify`` told a fake Twilio's address and a
short sweeper wait by its settings (``HYSBYS_TWILIO_BASE_URL``,
``HYSBYS_SWEEP_STALE_SECONDS``, ``HYSBYS_SWEEP_INTERVAL_SECONDS``,
``HYSBYS_PROVIDER_TIMEOUT_SECONDS``).  A run seeds ``n`` subscribers
over several tenants straight into the scheduler's schema and schedules a
broadcast per tenant due now, so the whole path runs: ticker → scheduler outbox
→ relay → ``notify.requests`` → dispatcher → provider → outcome events →
scheduler stats and inbound conversations.

:meth:`FaultRun.tally` counts the outcome from the databases (never a sample).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from bench.platform_run import Platform, auth
from bench.procs import Proc, Stack, free_port, platform_env
from services.notify.models import FINAL
from services.scheduler.ticker import notification_id

ROOT = Path(__file__).resolve().parents[2]
# The issue asks for at least 20,000 per fault; a developer may run fewer locally.
N = int(os.environ.get("HYSBYS_FAULT_NOTIFICATIONS", "20000"))
TENANTS = 4
UNSETTLED = ("created", "sending", "deferred")
FAST = {"segments_per_second": 1000, "senders": 100}   # no sender throttle in the way


@dataclass
class ModuleProc(Proc):
    """A :class:`~bench.procs.Proc` that runs any module and appends to its log on restart."""

    module: str = "services.cli"

    def start(self) -> None:
        log = open(self.log_path, "a") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.popen = subprocess.Popen([sys.executable, "-m", self.module, *self.argv],
                                      env=self.env, stdout=log, stderr=log, cwd=ROOT)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, no goodbye to the broker."""
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


@dataclass
class Tally:
    """What happened to every notification of a run, counted from the databases."""

    requested: int                    # what the scheduler asked for (deterministic ids)
    stored: int                       # of those, notifications notify holds
    lost: int                         # asked for, never stored
    unexpected: int                   # stored, never asked for
    by_status: dict[str, int]
    unsettled: int                    # still created / sending / deferred
    handed_off: int                   # sent_at set: a provider accepted it
    outcome_unknown: int              # the sweeper ended it: the worker died mid-hand-off
    provider_calls: int | None        # accepted calls the provider counted
    duplicates: int | None            # accepted calls beyond one per notification
    calls_without_row: int | None     # accepted calls for no handed-off/unknown notification
    scheduler_stats: dict[str, int]   # campaign_stats per status (notify's events, consumed)
    inbound_sent_events: int          # notification.sent events inbound consumed
    conversations: int                # inbound's conversation rows
    notify_requested_events: int      # notification.requested events notify consumed

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def events_consistent(self) -> bool:
        """Every outcome event reached the scheduler and inbound exactly once."""
        wanted = {s: c for s, c in self.by_status.items() if s in FINAL}
        stats = {s: c for s, c in self.scheduler_stats.items() if s in FINAL}
        return (self.scheduler_stats.get("sent", 0) == self.handed_off and stats == wanted
                and 0 < self.inbound_sent_events <= self.handed_off
                and self.conversations == self.handed_off
                and 0 < self.notify_requested_events <= self.stored)


@dataclass
class FaultRun:
    platform: Platform
    database_url: str
    broker_url: str
    log_dir: Path
    n: int = N
    tenants: list[dict] = field(default_factory=list)
    engine: sa.Engine | None = None
    began: float = 0.0

    # -- starting ---------------------------------------------------------------
    @classmethod
    def start(cls, database_url: str, broker_url: str, log_dir: Path, *, n: int = N,
              fake_twilio_url: str | None = None, stale_after: float = 20.0,
              provider_timeout: float = 10.0, extra_relay: bool = False, dispatchers: int = 0,
              extra_env: dict[str, str] | None = None) -> FaultRun:
        """Migrate, then start workers, ticker and APIs as processes; wait for the APIs.

        ``dispatchers``: that many ``hysbys dispatcher`` processes (``dispatcher-1`` …)
        beside ``hysbys worker notify --no-dispatcher``, as compose and Kubernetes run
        them; 0 (the default): the notify worker dispatches itself.  ``extra_env`` is
        added to every process's settings (``HYSBYS_REDIS_URL``, …)."""
        ports = {"notify": free_port(), "inbound": free_port(), "scheduler": free_port()}
        admin_token = "fault-admin-" + uuid.uuid4().hex
        env = platform_env(database_url, broker_url, Fernet.generate_key().decode(),
                           admin_token, ports)
        env.update({"PYTHONPATH": str(ROOT), "HYSBYS_SWEEP_STALE_SECONDS": str(stale_after),
                    "HYSBYS_SWEEP_INTERVAL_SECONDS": "3",
                    "HYSBYS_PROVIDER_TIMEOUT_SECONDS": str(provider_timeout), **(extra_env or {})})
        if fake_twilio_url:
            env["HYSBYS_TWILIO_BASE_URL"] = fake_twilio_url
        subprocess.run([sys.executable, "-m", "services.cli", "db", "upgrade"], env=env, cwd=ROOT,
                       check=True, capture_output=True)
        log_dir.mkdir(parents=True, exist_ok=True)
        stack = _stack(env, log_dir, extra_relay, dispatchers)
        stack.start()
        urls = {k: f"http://127.0.0.1:{v}" for k, v in ports.items()}
        try:
            for name in urls:
                stack.wait_http(urls[name] + "/healthz", timeout=180)   # a loaded CI machine
        except Exception:
            stack.stop()
            raise
        run = cls(Platform(stack, database_url, urls, {"Authorization": f"Bearer {admin_token}"}),
                  database_url, broker_url, log_dir, n=n)
        run.engine = sa.create_engine(database_url, pool_pre_ping=True, pool_size=2)
        return run

    def proc(self, name: str) -> ModuleProc:
        return self.platform.proc(name)  # type: ignore[return-value]

    @property
    def env(self) -> dict:
        return self.platform.stack.env

    def stop(self) -> None:
        """Stop every process, whatever happens to any one of them (none may outlive the test)."""
        self.platform.stack._stop.set()
        procs = [p for p in self.platform.stack.procs if p.popen is not None]
        for p in procs:
            if p.popen.poll() is None:
                p.popen.terminate()
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait(10)
        if self.engine is not None:
            self.engine.dispose()

    # -- the workload -----------------------------------------------------------
    def add_tenants(self, configs: list[dict]) -> list[dict]:
        """One tenant per config (PATCHed as given, with room to send fast)."""
        run_tag = uuid.uuid4().hex[:6]
        for i, config in enumerate(configs):
            self.tenants.append(self.platform.create_tenant(
                f"fault-{run_tag}-{i}", **{"capacity": FAST, **config}))
        self.platform.wait_replicated(self.tenants)
        return self.tenants

    def begin(self) -> None:
        """Seed ``n`` subscribers over the tenants and schedule a broadcast each, due now."""
        self.platform.seed_subscribers(self.tenants, self.n)
        due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)
        self.platform.schedule_broadcasts(self.tenants, due)
        self.began = time.monotonic()

    def api(self, tenant: dict) -> dict:
        return auth(tenant["api_key"])

    # -- watching ---------------------------------------------------------------
    def scalar(self, sql: str, **params):
        """One value, surviving a database restart (the pool pings and reconnects)."""
        for attempt in range(30):
            try:
                with self.engine.connect() as conn:
                    return conn.execute(sa.text(sql), params).scalar()
            except sa.exc.OperationalError:
                if attempt == 29:
                    raise
                time.sleep(1)
        return None

    def handled(self) -> int:
        """Notifications past the hand-off (sent, or a final status)."""
        finals = ", ".join(f"'{s}'" for s in FINAL)
        return int(self.scalar("SELECT count(*) FROM notify.notifications "
                               f"WHERE sent_at IS NOT NULL OR status IN ({finals})"))

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not reached within {timeout:.0f}s")
            time.sleep(0.5)

    def wait_handled(self, fraction: float, timeout: float = 900) -> None:
        """Until ``fraction`` of the run is past the hand-off: the moment to break something."""
        self.wait_for(lambda: self.handled() >= fraction * self.n,
                      f"{fraction:.0%} of {self.n} handed off", timeout)

    def wait_settled(self, also_settled: tuple[str, ...] = (), timeout: float = 900) -> Tally:
        """Until every notification is settled and every outcome event consumed; the tally."""
        unsettled = tuple(s for s in UNSETTLED + ("sent",) if s not in also_settled)
        statuses = ", ".join(f"'{s}'" for s in unsettled)

        def settled() -> bool:
            stored = self.scalar("SELECT count(*) FROM notify.notifications")
            waiting = self.scalar(f"SELECT count(*) FROM notify.notifications "
                                  f"WHERE status IN ({statuses})")
            return stored >= self.n and waiting == 0

        self.wait_for(settled, "every notification settled", timeout)
        last: dict = {}

        def consumed() -> bool:
            last["tally"] = self.tally()
            return last["tally"].events_consistent()

        try:
            self.wait_for(consumed, "every outcome event consumed", timeout=120)
        except AssertionError:
            pass        # the caller's assertions name what is missing
        return last.get("tally") or self.tally()

    # -- counting ---------------------------------------------------------------
    def expected_ids(self) -> set[str]:
        """The ids the ticker must have asked for: one per (campaign, subscriber, occurrence)."""
        with self.engine.connect() as conn:
            occurrences = conn.execute(sa.text(
                "SELECT o.campaign_id, o.occurrence_key, c.tenant_id FROM scheduler.occurrences o "
                "JOIN scheduler.campaigns c ON c.id = o.campaign_id")).all()
            subscribers: dict[str, list[str]] = {}
            for sid, tid in conn.execute(sa.text("SELECT id, tenant_id FROM scheduler.subscribers")):
                subscribers.setdefault(tid, []).append(sid)
        return {notification_id(cid, sid, key) for cid, key, tid in occurrences
                for sid in subscribers.get(tid, [])}

    def tally(self, provider_accepted: dict[str, int] | None = None,
              simulator_calls: int | None = None) -> Tally:
        expected = self.expected_ids()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, status, sent_at IS NOT NULL, coalesce(status_reason, ''), "
                "coalesce(provider, '') FROM notify.notifications "
                "WHERE campaign_id IS NOT NULL")).all()
            stats = dict(conn.execute(sa.text(
                "SELECT status, sum(count) FROM scheduler.campaign_stats GROUP BY status")).all())
            inbound_sent = conn.execute(sa.text(
                "SELECT count(*) FROM inbound.inbox WHERE event_type = 'notification.sent'")).scalar()
            conversations = conn.execute(sa.text("SELECT count(*) FROM inbound.conversations")).scalar()
            requested_events = conn.execute(sa.text(
                "SELECT count(*) FROM notify.inbox WHERE event_type = 'notification.requested'")
            ).scalar()
        ids = {r[0] for r in rows}
        by_status: dict[str, int] = {}
        for r in rows:
            by_status[r[1]] = by_status.get(r[1], 0) + 1
        handed = {r[0] for r in rows if r[2]}
        unknown = {r[0] for r in rows if r[3].startswith("outcome unknown")}
        simulated = {r[0] for r in rows if r[2] and r[4] == "simulator"}
        calls = duplicates = strays = None
        if provider_accepted is not None or simulator_calls is not None:
            accepted = provider_accepted or {}
            sim_calls = simulator_calls or 0
            calls = sum(accepted.values()) + sim_calls
            duplicates = sum(c - 1 for c in accepted.values() if c > 1)
            if simulator_calls is not None:
                sim_unknown = unknown if provider_accepted is None else set()
                duplicates += max(0, sim_calls - len(simulated) - len(sim_unknown))
            if provider_accepted is not None:
                strays = len(set(accepted) - (handed - simulated) - unknown)
        return Tally(
            requested=len(expected), stored=len(ids & expected), lost=len(expected - ids),
            unexpected=len(ids - expected), by_status=by_status,
            unsettled=sum(by_status.get(s, 0) for s in UNSETTLED), handed_off=len(handed),
            outcome_unknown=len(unknown), provider_calls=calls, duplicates=duplicates,
            calls_without_row=strays, scheduler_stats={k: int(v) for k, v in stats.items()},
            inbound_sent_events=int(inbound_sent), conversations=int(conversations),
            notify_requested_events=int(requested_events))

    def report(self, name: str, fault: str, tally: Tally, **extra) -> None:
        """Print the tally (and append it to $HYSBYS_FAULT_REPORT, when set)."""
        line = {"test": name, "fault": fault, **tally.as_dict(),
                "seconds": round(time.monotonic() - self.began, 1), **extra}
        print("FAULT-TALLY " + json.dumps(line), flush=True)
        if os.environ.get("HYSBYS_FAULT_REPORT"):
            with open(os.environ["HYSBYS_FAULT_REPORT"], "a") as fh:
                fh.write(json.dumps(line) + "\n")


def _stack(env: dict, log_dir: Path, extra_relay: bool, dispatchers: int = 0) -> Stack:
    """The processes docker-compose runs."""
    stack = Stack(env)

    def add(name: str, argv: list[str], metrics: bool = True):
        port = free_port() if metrics else None
        penv = {**env, **({"HYSBYS_METRICS_PORT": str(port)} if port else {})}
        stack.procs.append(ModuleProc(name, argv, penv, port, log_path=str(log_dir / f"{name}.log")))

    add("notify-worker", ["worker", "notify", *(["--no-dispatcher"] if dispatchers else [])])
    for i in range(1, dispatchers + 1):
        add(f"dispatcher-{i}", ["dispatcher"])
    add("scheduler-worker", ["worker", "scheduler"])
    add("inbound-worker", ["worker", "inbound"])
    add("scheduler-ticker", ["ticker"])
    if extra_relay:
        add("relay", ["relay", "notify", "scheduler", "inbound"], metrics=False)
    for name in ("notify", "scheduler", "inbound"):
        add(f"{name}-api", ["serve", name, "--workers", "1", "--threads", "4"], metrics=False)
    return stack


def assert_exactly_once(t: Tally, *, n: int) -> None:
    """The contract: nothing lost, nothing extra, everything settled, one call each, every event consumed."""
    assert t.requested == n, f"the scheduler asked for {t.requested}, not {n}"
    assert (t.lost, t.unexpected, t.unsettled) == (0, 0, 0), t.as_dict()
    assert t.stored == n and sum(t.by_status.values()) == n, t.as_dict()
    if t.provider_calls is not None:
        assert t.duplicates == 0, f"{t.duplicates} notifications reached the provider twice"
        assert t.provider_calls >= t.handed_off, "a notification was marked sent without a call"
        assert t.provider_calls <= t.handed_off + t.outcome_unknown, t.as_dict()
    if t.calls_without_row is not None:
        assert t.calls_without_row == 0, t.as_dict()
    assert t.scheduler_stats.get("sent", 0) == t.handed_off, t.as_dict()
    for status in FINAL:
        assert t.scheduler_stats.get(status, 0) == t.by_status.get(status, 0), (status, t.as_dict())
    # the inboxes hold one row per event, and outcome and request events carry batches
    # (up to 1,000 items): every item applied exactly once is what the counts above and
    # the conversations show; the inbox rows only say events arrived, none holding none
    assert 0 < t.inbound_sent_events <= t.handed_off, t.as_dict()
    assert t.conversations == t.handed_off, t.as_dict()
    assert 0 < t.notify_requested_events <= n, t.as_dict()


def fake_stats(url: str) -> dict:
    return requests.get(url + "/_fake/stats", timeout=30).json()


def fake_behave(url: str, kind: str, **spec) -> None:
    requests.post(url + "/_fake/behave", json={"kind": kind, **spec}, timeout=10).raise_for_status()
