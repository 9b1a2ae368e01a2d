"""The inbound service's composition root: runtime, scheduler client, app, worker."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import requests
from flask import Flask

from services.inbound import (
    api,
    api_reply_texts,
    handlers,
    open311,
    replies,
    tenant_webhooks,
    webhooks,
)
from services.inbound.scheduler_client import HttpScheduler, SchedulerLookups
from shared import audit, inbox, topology
from shared.bus import Bus
from shared.config import Settings
from shared.http import base_app
from shared.runtime import Background, Runtime
from shared.tenancy import OwnerTenants

SERVICE = "inbound"
MIGRATIONS = Path(__file__).parent / "migrations"
WEBHOOKS_QUEUE = "inbound.webhooks"


@dataclass
class InboundService:
    runtime: Runtime
    lookups: SchedulerLookups
    http: requests.Session = field(default_factory=requests.Session)

    @functools.cached_property
    def replies(self) -> replies.Replies:
        """The service's one receiver of replies (with its cache of the tenants' reply
        configuration, services/inbound/reply_config.py)."""
        return replies.Replies(self.runtime.db, self.lookups)

    def create_app(self) -> Flask:
        app, flask_api = base_app(
            self.runtime, "Hysbys inbound",
            "Replies from citizens: provider webhooks, keywords, opt-outs, service requests "
            "(native and Open311 GeoReport v2)")
        flask_api.register_blueprint(webhooks.blueprint(self.runtime, self.replies))
        flask_api.register_blueprint(api.blueprint(self.runtime))
        flask_api.register_blueprint(api_reply_texts.blueprint(self.runtime))
        flask_api.register_blueprint(open311.blueprint(self.runtime))
        audit.install_api_hook(app, self.runtime)
        return app

    def queue_handlers(self) -> dict:
        routes = handlers.routes(box=self.runtime.box)
        out = {}
        for spec in topology.queues_for(SERVICE):
            bound = {t: routes[t] for t in spec.event_types}
            if spec.name == WEBHOOKS_QUEUE:
                out[spec.name] = tenant_webhooks.WebhookDispatcher(
                    self.runtime.db, spec.name, bound, self.http)
            else:
                out[spec.name] = inbox.dispatcher(self.runtime.db, spec.name, bound)
        return out

    def background(self) -> Background:
        return Background(self.runtime, self.queue_handlers(), [retention_loop(self.runtime.db)])


def retention_loop(db, interval: float = 300.0):
    """Replies and conversation context purged, closed service requests' citizen details
    blanked, after each tenant's retention period (:mod:`services.inbound.retention`)."""
    from services.inbound import retention

    return retention.loop(db, interval)


def build(settings: Settings, bus: Bus | None = None,
          lookups: SchedulerLookups | None = None) -> InboundService:
    """The inbound service on ``settings``; nothing connects until it is used."""
    runtime = Runtime.build(settings, SERVICE, MIGRATIONS, bus=bus)
    http = requests.Session()
    # a tenant created a moment ago is fetched from notify, not refused (shared.tenancy)
    runtime.tenant_source = OwnerTenants(settings.internal_url("notify"), settings.admin_token)
    if lookups is None:
        # HYSBYS_SCHEDULER_URL in containers; 127.0.0.1:<scheduler port> in one process
        lookups = HttpScheduler(settings.internal_url("scheduler"), settings.admin_token, http)
    return InboundService(runtime, lookups, http)
