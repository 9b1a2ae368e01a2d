"""The scheduler service's composition root: runtime, ticker, app, worker."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from services.scheduler import api, handlers, retention
from services.scheduler.ticker import Ticker
from shared import audit, inbox
from shared.bus import Bus
from shared.config import Settings
from shared.db import utcnow
from shared.http import base_app
from shared.metrics import METRICS
from shared.runtime import Background, Runtime
from shared.tenancy import OwnerTenants

SERVICE = "scheduler"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class SchedulerService:
    runtime: Runtime
    # how the API asks notify for a template's fragment counts (a test passes a fake)
    templates: object | None = None
    # the service's clock: the API's "in the future" and "today", the ticker's "due";
    # a test passes its own
    clock: Callable[[], dt.datetime] = utcnow
    ticker: Ticker = field(init=False)

    def __post_init__(self):
        # the ticker's "due" is the API's "now": a campaign booked for 10:00 by the API's
        # clock is sent at 10:00 by the same clock
        self.ticker = Ticker(self.runtime.db, interval=self.runtime.settings.ticker_interval,
                             on_outbox=self.runtime.relay.nudge.set, clock=lambda: self.clock())
        # read from the database at each scrape, so the API process reports the
        # lag even when the ticker runs in a process of its own
        self.runtime.gauges.append(self.refresh_lag)

    def refresh_lag(self) -> None:
        """Set ``hysbys_scheduler_lag_seconds`` from the oldest runnable occurrence."""
        METRICS.scheduler_lag.set(self.ticker.lag_seconds())

    def nudge(self) -> None:
        """Wake the ticker: something became due (a campaign for now, a resume)."""
        self.ticker.nudge.set()

    def create_app(self) -> Flask:
        app, flask_api = base_app(self.runtime, "Hysbys scheduler",
                                  "Subscribers, campaigns, occurrences and the ticker")
        for blp in api.blueprints(self.runtime, self.nudge, self.templates, lambda: self.clock()):
            flask_api.register_blueprint(blp)
        audit.install_api_hook(app, self.runtime)
        return app

    def queue_handlers(self) -> dict:
        return inbox.queue_dispatchers(self.runtime.db, SERVICE, handlers.routes())

    def background(self, with_ticker: bool = True) -> Background:
        """Worker, relay and the appointments' retention, plus the ticker unless it runs as
        its own process."""
        loops = [retention.loop(self.runtime.db, clock=lambda: self.clock())]
        if with_ticker:
            loops.append(self.ticker.run_forever)
        return Background(self.runtime, self.queue_handlers(), loops)


def build(settings: Settings, bus: Bus | None = None) -> SchedulerService:
    runtime = Runtime.build(settings, SERVICE, MIGRATIONS, bus=bus)
    # a tenant created a moment ago is fetched from notify, not refused (shared.tenancy)
    runtime.tenant_source = OwnerTenants(settings.internal_url("notify"), settings.admin_token)
    return SchedulerService(runtime)
