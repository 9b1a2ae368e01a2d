"""A service's runtime: its settings, database, bus and background loops.

Built by each service's composition root (``services/<name>/wiring.py``) and
passed to its app factory and its worker.  Nothing is created at import time.
"""
from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

from sqlalchemy.engine import Engine

from shared import inbox, topology, tracing
from shared.bus import Bus, Handler, Worker
from shared.config import Settings
from shared.crypto import SecretBox
from shared.db import Database, encrypt_with, upgrade
from shared.metrics import METRICS
from shared.outbox import Relay
from shared.tenant_cache import TenantCache

log = logging.getLogger(__name__)

Loop = Callable[[threading.Event], None]
MIN_FREE_BYTES = 1024 * 1024    # below this a SQLite file's disk counts as full


def sqlite_write_probe(engine: Engine, min_free: int = MIN_FREE_BYTES) -> None:
    """Raise unless ``engine``'s SQLite file can take a write now.

    Reading is not enough: a full disk or a read-only file still answers ``SELECT 1``.
    The probe takes the write lock (``BEGIN IMMEDIATE``), rewrites the header's
    ``user_version`` with its own value (a change that needs the file writable) and
    rolls back: nothing is written.  A full disk only shows at commit, so the free
    space under the file is checked too.  Another writer holding the lock (busy) means
    the file is writable: not a failure.
    """
    database = engine.url.database or ""
    if database in ("", ":memory:"):
        return
    path = database.removeprefix("file:").split("?", 1)[0]
    folder = Path(path).resolve().parent
    free = shutil.disk_usage(folder).free
    if free < min_free:
        raise OSError(f"disk full: {free} bytes free under {folder}")
    raw = engine.raw_connection()
    try:
        # a SQLite engine's pooled connection wraps sqlite3's own
        conn = cast(sqlite3.Connection, raw.driver_connection)
        busy = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        conn.execute("PRAGMA busy_timeout = 2000")     # a probe must answer quickly
        try:
            conn.execute("BEGIN IMMEDIATE")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute(f"PRAGMA user_version = {version}")
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in (sqlite3.SQLITE_BUSY,
                                                                sqlite3.SQLITE_LOCKED):
                raise
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute(f"PRAGMA busy_timeout = {busy}")
    finally:
        raw.close()


class TenantSource(Protocol):
    """Where a replica asks for a tenant it does not know yet (shared.tenancy.OwnerTenants)."""

    def refresh(self, db: Database, tenant_id: str) -> bool: ...


@dataclass
class Runtime:
    settings: Settings
    service: str
    db: Database
    bus: Bus
    box: SecretBox
    migrations: Path
    relay: Relay = field(init=False)
    # Read at scrape time: a gauge whose truth is in the database (scheduler lag,
    # provider state) is right in every process, not only the one running the loop.
    gauges: list[Callable[[], None]] = field(default_factory=list)
    # a replica's way to a tenant it does not know yet (shared.tenancy.OwnerTenants);
    # None in notify, which owns the tenants
    tenant_source: TenantSource | None = None
    # tenants and keys between requests, checked by one stamp query each (shared.tenant_cache)
    tenant_cache: TenantCache = field(default_factory=TenantCache)

    def __post_init__(self):
        self.relay = Relay(self.db, self.bus, interval=self.settings.relay_interval)
        encrypt_with(self.db.engine, self.box)   # message bodies at rest (EncryptedText)

    @classmethod
    def build(cls, settings: Settings, service: str, migrations: Path,
              bus: Bus | None = None) -> Runtime:
        tracing.configure(service)      # OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set
        return cls(settings=settings, service=service,
                   db=Database.connect(settings.database_url, service),
                   bus=bus or Bus(settings.broker_url, quorum=settings.quorum_queues),
                   box=SecretBox(settings.secret_key), migrations=migrations)

    def migrate(self) -> None:
        upgrade(self.db, self.migrations)

    def readiness(self) -> dict[str, str]:
        checks = {}
        try:
            self.db.ping()
            if self.db.dialect == "sqlite":
                sqlite_write_probe(self.db.engine)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"error: {type(exc).__name__}: {_first_line(exc)}"
        try:
            with self.bus.connection() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"error: {type(exc).__name__}"
        return checks

    def refresh_gauges(self) -> None:
        """Read outbox backlog and queue depths at scrape time."""
        try:
            count, age = self.relay.backlog()
            METRICS.outbox_backlog.labels(service=self.service).set(count)
            METRICS.outbox_oldest_age.labels(service=self.service).set(age)
        except Exception:  # noqa: BLE001 - a scrape must not fail on a DB hiccup
            log.warning("could not read outbox backlog")
        try:
            with self.bus.connection() as conn:
                for spec in topology.queues_for(self.service):
                    for name in (spec.name, spec.dlq):
                        ready, consumers = self.bus.queue_depth(conn, name)
                        METRICS.queue_depth.labels(queue=name).set(ready)
                        METRICS.queue_consumers.labels(queue=name).set(consumers)
        except Exception:  # noqa: BLE001
            log.warning("could not read queue depths")
        for refresh in self.gauges:
            try:
                refresh()
            except Exception:  # noqa: BLE001 - one failing gauge must not fail the scrape
                log.warning("could not refresh a gauge", exc_info=True)


def _first_line(exc: BaseException) -> str:
    """The cause in words, without a statement or its parameters (personal data)."""
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).strip().splitlines() or [""])[0][:200]


class Background:
    """Runs a service's worker, relay and other loops as threads until stopped."""

    def __init__(self, runtime: Runtime, handlers: dict[str, Handler], loops: list[Loop],
                 *, with_relay: bool = True):
        self.runtime = runtime
        self.handlers = handlers
        self.loops = list(loops)
        if handlers:    # a consumer's inbox forgets what can no longer come again
            self.loops.append(inbox.cleanup_loop(runtime.db))
        if with_relay:
            self.loops.append(runtime.relay.run_forever)
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.workers: list[Worker] = []

    def start(self) -> None:
        name = self.runtime.service
        # One consumer (connection and thread) per queue: a queue's batch waits on the
        # database, and another queue's batch (notify's callbacks behind its requests on
        # bin night) should not queue behind it.  On the in-memory broker one worker
        # takes them all: kombu's memory transport polls, so more threads only add waits.
        groups = ([{q: h} for q, h in self.handlers.items()] if not self.runtime.bus.is_memory
                  else [self.handlers] if self.handlers else [])
        for group in groups:
            worker = Worker(self.runtime.bus, group, name=name)
            label = next(iter(group)) if len(group) == 1 else "worker"
            t = threading.Thread(target=worker.run, name=f"{name}-{label}", daemon=True)
            t.start()
            self.workers.append(worker)
            self.threads.append(t)
        for loop in self.loops:
            t = threading.Thread(target=loop, args=(self.stop_event,),
                                 name=f"{name}-{getattr(loop, '__name__', 'loop')}", daemon=True)
            t.start()
            self.threads.append(t)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        return all(w.ready.wait(max(0.0, deadline - time.monotonic())) for w in self.workers)

    def signal(self) -> None:
        """Ask every loop to stop; :meth:`join` waits for them."""
        self.stop_event.set()
        self.runtime.relay.nudge.set()
        for worker in self.workers:
            worker.should_stop = True

    def join(self, timeout: float = 5.0) -> None:
        for t in self.threads:
            t.join(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self.signal()
        self.join(timeout)
