"""A service's runtime: its settings, database, bus and background loops.

Built by each service's composition root (``services/<name>/wiring.py``) and
passed to its app factory and its worker.  Nothing is created at import time.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared import topology
from shared.bus import Bus, Handler, Worker
from shared.config import Settings
from shared.crypto import SecretBox
from shared.db import Database, upgrade
from shared.metrics import METRICS
from shared.outbox import Relay

log = logging.getLogger(__name__)

Loop = Callable[[threading.Event], None]


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

    def __post_init__(self):
        self.relay = Relay(self.db, self.bus, interval=self.settings.relay_interval)

    @classmethod
    def build(cls, settings: Settings, service: str, migrations: Path,
              bus: Bus | None = None) -> Runtime:
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
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["database"] = f"error: {type(exc).__name__}"
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


class Background:
    """Runs a service's worker, relay and other loops as threads until stopped."""

    def __init__(self, runtime: Runtime, handlers: dict[str, Handler], loops: list[Loop],
                 *, with_relay: bool = True):
        self.runtime = runtime
        self.handlers = handlers
        self.loops = list(loops)
        if with_relay:
            self.loops.append(runtime.relay.run_forever)
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.worker: Worker | None = None

    def start(self) -> None:
        name = self.runtime.service
        if self.handlers:
            self.worker = Worker(self.runtime.bus, self.handlers, name=name)
            t = threading.Thread(target=self.worker.run, name=f"{name}-worker", daemon=True)
            t.start()
            self.threads.append(t)
        for loop in self.loops:
            t = threading.Thread(target=loop, args=(self.stop_event,),
                                 name=f"{name}-{getattr(loop, '__name__', 'loop')}", daemon=True)
            t.start()
            self.threads.append(t)

    def wait_ready(self, timeout: float = 10.0) -> bool:
        return self.worker.ready.wait(timeout) if self.worker else True

    def signal(self) -> None:
        """Ask every loop to stop; :meth:`join` waits for them."""
        self.stop_event.set()
        self.runtime.relay.nudge.set()
        if self.worker:
            self.worker.should_stop = True

    def join(self, timeout: float = 5.0) -> None:
        for t in self.threads:
            t.join(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self.signal()
        self.join(timeout)
