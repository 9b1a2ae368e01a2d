"""The notify service's composition root: runtime, providers, app, worker."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from services.notify import admin, api_native, api_v2, handlers
from services.notify.dispatcher import Dispatcher
from services.notify.providers.base import Provider
from services.notify.providers.simulator import Simulator
from shared import inbox, topology
from shared.bus import Bus
from shared.config import Settings
from shared.http import base_app
from shared.runtime import Background, Runtime
from shared.tenancy import Tenant

SERVICE = "notify"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class NotifyService:
    runtime: Runtime
    providers: dict[str, Provider] = field(default_factory=dict)
    dispatcher: Dispatcher = field(init=False)

    def __post_init__(self):
        self.providers.setdefault("simulator", Simulator())
        self.dispatcher = Dispatcher(self.runtime.db, self.choose_providers,
                                     interval=self.runtime.settings.dispatch_interval,
                                     on_outbox=self.runtime.relay.nudge.set)

    @property
    def simulator(self) -> Simulator:
        return self.providers["simulator"]  # type: ignore[return-value]

    def choose_providers(self, notification, tenant: Tenant) -> list[Provider]:
        """The tenant's providers in its order; a ``test`` key only ever reaches the simulator."""
        if notification.key_type == "test":
            return [self.providers["simulator"]]
        allowed = self.runtime.settings.allowed_providers
        chosen = [self.providers[name] for name in tenant.setting("providers")
                  if name in allowed and name in self.providers
                  and notification.channel in self.providers[name].channels]
        return chosen

    def nudge(self) -> None:
        self.dispatcher.nudge.set()

    def create_app(self) -> Flask:
        app, api = base_app(self.runtime, "Hysbys notify",
                            "Templates and sending: GOV.UK Notify v2 compatible and native API")
        api.register_blueprint(api_v2.blueprint(self.runtime, self.nudge))
        api.register_blueprint(api_native.blueprint(self.runtime))
        api.register_blueprint(admin.blueprint(self.runtime))
        return app

    def queue_handlers(self) -> dict:
        routes = handlers.routes(box=self.runtime.box)
        out = {}
        for spec in topology.queues_for(SERVICE):
            consumer = spec.name
            out[spec.name] = inbox.dispatcher(
                self.runtime.db, consumer, {t: routes[t] for t in spec.event_types})
        return out

    def background(self) -> Background:
        def on_requested_then_nudge(handler):
            def run(event):
                handler(event)
                self.nudge()
            return run

        queue_handlers = self.queue_handlers()
        queue_handlers["notify.requests"] = on_requested_then_nudge(
            queue_handlers["notify.requests"])
        return Background(self.runtime, queue_handlers, [self.dispatcher.run_forever])


def build(settings: Settings, bus: Bus | None = None,
          providers: dict[str, Provider] | None = None) -> NotifyService:
    runtime = Runtime.build(settings, SERVICE, MIGRATIONS, bus=bus)
    return NotifyService(runtime, dict(providers or {}))
