"""The embedded platform: all three services in one process.

``hysbys up`` (and ``make run``) use this with SQLite and kombu's in-memory
transport; the tests use it with the same settings and, for the integration
tier, with RabbitMQ and PostgreSQL.  The services still talk only through the
bus and each other's HTTP APIs, exactly as they do when run apart.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from werkzeug.serving import BaseWSGIServer, make_server

from services.inbound import wiring as inbound_wiring
from services.notify import wiring as notify_wiring
from services.notify.providers.base import Provider
from services.notify.providers.choice import AdapterFactory
from services.scheduler import wiring as scheduler_wiring
from shared.bus import Bus
from shared.config import Settings
from shared.runtime import Background

log = logging.getLogger(__name__)


@dataclass
class Platform:
    settings: Settings
    providers: dict[str, Provider | AdapterFactory] | None = None
    bus: Bus = field(init=False)
    servers: list[BaseWSGIServer] = field(default_factory=list, init=False)
    backgrounds: list[Background] = field(default_factory=list, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)

    def __post_init__(self):
        self.bus = Bus(self.settings.broker_url, quorum=self.settings.quorum_queues)
        self.notify = notify_wiring.build(self.settings, self.bus, self.providers)
        self.inbound = inbound_wiring.build(self.settings, self.bus)
        self.scheduler = scheduler_wiring.build(self.settings, self.bus)

    @property
    def services(self):
        return (self.notify, self.inbound, self.scheduler)

    def migrate(self) -> None:
        for svc in self.services:
            svc.runtime.migrate()

    def start(self, *, http: bool = True) -> None:
        """Declare the topology, start every worker, relay, dispatcher and the ticker."""
        with self.bus.connection() as conn:
            self.bus.declare(conn)
        self.backgrounds = [svc.background() for svc in self.services]
        for bg in self.backgrounds:
            bg.start()
        for bg in self.backgrounds:
            if not bg.wait_ready(15):
                raise RuntimeError(f"{bg.runtime.service} worker did not connect to the broker")
        if http:
            for name, svc in (("notify", self.notify), ("inbound", self.inbound),
                              ("scheduler", self.scheduler)):
                self.serve(name, svc.create_app())

    def serve(self, name: str, app) -> None:
        server = make_server(self.settings.http_host, self.settings.ports[name], app,
                             threaded=True)
        t = threading.Thread(target=server.serve_forever, name=f"{name}-http", daemon=True)
        t.start()
        self.servers.append(server)
        self._threads.append(t)

    def urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{port}" for name, port in self.settings.ports.items()}

    def stop(self) -> None:
        for bg in self.backgrounds:      # every loop stops at once, then we wait
            bg.signal()
        closing = [threading.Thread(target=server.shutdown, daemon=True) for server in self.servers]
        for t in closing:
            t.start()
        for bg in self.backgrounds:
            bg.join()
        for t in closing:
            t.join()
        for server in self.servers:
            server.server_close()
        self.bus.close()
        for svc in self.services:
            svc.runtime.db.dispose()
