"""The inbound service's composition root: runtime, app, worker."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from services.inbound import handlers, webhooks
from shared import inbox, topology
from shared.bus import Bus
from shared.config import Settings
from shared.http import base_app
from shared.runtime import Background, Runtime

SERVICE = "inbound"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class InboundService:
    runtime: Runtime

    def create_app(self) -> Flask:
        app, api = base_app(self.runtime, "Hysbys inbound",
                            "Replies from citizens: provider webhooks, keywords, opt-outs")
        api.register_blueprint(webhooks.blueprint(self.runtime))
        return app

    def queue_handlers(self) -> dict:
        routes = handlers.routes()
        return {spec.name: inbox.dispatcher(self.runtime.db, spec.name,
                                            {t: routes[t] for t in spec.event_types})
                for spec in topology.queues_for(SERVICE)}

    def background(self) -> Background:
        return Background(self.runtime, self.queue_handlers(), [])


def build(settings: Settings, bus: Bus | None = None) -> InboundService:
    """The inbound service on ``settings``; nothing connects until it is used."""
    return InboundService(Runtime.build(settings, SERVICE, MIGRATIONS, bus=bus))
