"""The notify service's composition root: runtime, providers, app, worker."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from services.notify import (
    admin,
    api_native,
    api_v2,
    audit_api,
    console,
    handlers,
    limits,
    opendata,
    ops,
    receipts,
    retention,
    status_callbacks,
)
from services.notify.console import audit as console_audit
from services.notify.dispatcher import Dispatcher, Safeguards
from services.notify.providers.base import Provider
from services.notify.providers.choice import (
    AdapterFactory,
    ProviderRegistry,
    default_factories,
    is_factory,
)
from services.notify.providers.health import Breakers, DatabaseCircuitStore, RedisCircuitStore
from services.notify.providers.simulator import Simulator
from services.notify.providers.throttle import DatabaseThrottle, RedisThrottle
from services.notify.templates import TemplateCache
from shared import inbox
from shared.bus import Bus
from shared.config import Settings
from shared.db import Database, utcnow
from shared.http import base_app
from shared.runtime import Background, Runtime
from shared.tenancy import Tenant

SERVICE = "notify"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class NotifyService:
    """The notify service's parts.

    ``providers`` maps a provider name to a shared instance (the simulator, or a
    fake in tests) or to an :class:`AdapterFactory` that builds that provider
    per tenant from its credentials (a test points ``TwilioFactory(base_url=…)``
    at a fake Twilio).  Names not given get the real factories.
    """

    runtime: Runtime
    providers: dict[str, Provider | AdapterFactory] = field(default_factory=dict)
    safeguards: Safeguards | None = None
    # what "now" is for the API and the delivery-status callbacks (a test sets a fixed
    # instant: quiet hours at 21:30 at noon; a callback's backoff without sleeping)
    clock: Callable[[], dt.datetime] = utcnow
    dispatcher: Dispatcher = field(init=False)
    registry: ProviderRegistry = field(init=False)
    # sends the delivery-status callbacks the notify.callbacks handler recorded, after commit
    callbacks: status_callbacks.Sender = field(init=False)
    # the process's API counters and template cache (shared by every app it makes)
    api_limits: limits.ApiLimits = field(init=False)
    templates: TemplateCache = field(init=False)

    def __post_init__(self):
        self.providers.setdefault("simulator", Simulator())
        shared = {n: p for n, p in self.providers.items() if not is_factory(p)}
        factories = {**default_factories(),
                     **{n: f for n, f in self.providers.items() if is_factory(f)}}
        self.registry = ProviderRegistry(self.runtime.settings, self.runtime.box, shared, factories)
        self.dispatcher = Dispatcher(self.runtime.db, self.choose_providers,
                                     interval=self.runtime.settings.dispatch_interval,
                                     on_outbox=self.runtime.relay.nudge.set,
                                     safeguards=self.safeguards)
        self.callbacks = status_callbacks.Sender(self.runtime.db, self.runtime.box,
                                                 clock=lambda: self.clock())
        self.runtime.gauges.extend(ops.gauges(self.runtime))
        self.api_limits = limits.ApiLimits.configured(self.runtime.settings, self.runtime.db)
        self.templates = TemplateCache()

    @property
    def simulator(self) -> Simulator:
        return self.providers["simulator"]  # type: ignore[return-value]

    def choose_providers(self, notification, tenant: Tenant) -> list[Provider]:
        """The tenant's providers in its order (or by weight); a ``test`` key only reaches the simulator."""
        return self.registry.choose(notification, tenant)

    def nudge(self) -> None:
        self.dispatcher.nudge.set()

    def create_app(self, ops_board: ops.OpsBoard | None = None) -> Flask:
        app, api = base_app(self.runtime, "Hysbys notify",
                            "Templates and sending: GOV.UK Notify v2 compatible and native API")
        api.register_blueprint(api_v2.blueprint(self.runtime, self.nudge, lambda: self.clock(),
                                                self.api_limits, self.templates))
        api.register_blueprint(api_native.blueprint(self.runtime, self.nudge, self.api_limits))
        api.register_blueprint(admin.blueprint(self.runtime))
        api.register_blueprint(admin.internal_blueprint(self.runtime))
        api.register_blueprint(receipts.blueprint(self.runtime))
        app.register_blueprint(ops.blueprint(
            self.runtime, scheduler_metrics_url=self.runtime.settings.internal_url("scheduler")
            + "/metrics", board=ops_board))
        app.register_blueprint(opendata.blueprint(self.runtime.db))
        api.register_blueprint(audit_api.blueprint(self.runtime, self.api_limits))
        console.init_app(app, self.runtime, nudge=self.nudge)
        console_audit.install_api_hook(app, self.runtime.db)
        return app

    def queue_handlers(self) -> dict:
        return inbox.queue_dispatchers(
            self.runtime.db, SERVICE,
            handlers.routes(clock=lambda: self.clock(), nudge=self.nudge,
                            callbacks_recorded=self.callbacks.nudge.set))

    def background(self, *, consumers: bool = True, dispatcher: bool = True) -> Background:
        """The service's loops: its queues' consumers (with the retention purge and the
        delivery-status callbacks' sender, woken when a callbacks batch commits), the
        dispatcher, and the outbox relay.  ``hysbys worker notify`` runs them all in one
        process; at scale the dispatchers run as processes of their own (``hysbys
        dispatcher``, as many as needed: they share sender throttles and circuits, see
        :func:`configured_safeguards`) beside ``hysbys worker notify --no-dispatcher``, so
        consumers and dispatchers share no interpreter lock."""
        queue_handlers = self.queue_handlers() if consumers else {}
        loops = ([self.dispatcher.run_forever] if dispatcher else []) + (
            [retention.loop(self.runtime.db, clock=lambda: self.clock()), _named(self.callbacks.run_forever,
                                                     "status_callbacks")] if consumers else [])
        return Background(self.runtime, queue_handlers, loops)


def _named(loop, name: str):
    """The loop under a name of its own (its thread's name, in logs and /healthz)."""
    def run(stop) -> None:
        loop(stop)
    run.__name__ = name
    return run


def configured_factories(settings: Settings) -> dict[str, AdapterFactory]:
    """The real adapters' factories as the settings tune them (Twilio's address, timeouts)."""
    from services.notify.providers.govuk_notify import GovukNotifyFactory
    from services.notify.providers.smtp import SmtpFactory
    from services.notify.providers.twilio import TwilioFactory

    timeout = settings.provider_timeout
    return {"twilio": TwilioFactory(base_url=settings.twilio_base_url, timeout=timeout),
            "notify": GovukNotifyFactory(timeout=timeout), "smtp": SmtpFactory(timeout=timeout)}


def configured_safeguards(settings: Settings, db: Database) -> Safeguards:
    """Default retry, circuits and throttle; the sweeper's wait and pace from the settings.

    Sender throttles and provider circuits are shared by every dispatcher: in Redis
    when ``HYSBYS_REDIS_URL`` is set, otherwise in notify's database.  A half-open
    circuit's trial call is leased for twice the provider timeout (at least 10 s):
    a dispatcher that dies mid-trial holds it no longer than that."""
    lease = max(10.0, 2 * settings.provider_timeout)
    if settings.redis_url:
        throttle = RedisThrottle(settings.redis_url, prefix=settings.redis_prefix)
        store = RedisCircuitStore(settings.redis_url, prefix=settings.redis_prefix)
    else:
        throttle, store = DatabaseThrottle(), DatabaseCircuitStore(db)
    return Safeguards(breakers=Breakers(store=store, trial_lease=lease), throttle=throttle,
                      stale_after=dt.timedelta(seconds=settings.sweep_stale_seconds),
                      sweep_every=settings.sweep_interval_seconds)


def build(settings: Settings, bus: Bus | None = None,
          providers: dict[str, Provider | AdapterFactory] | None = None,
          safeguards: Safeguards | None = None) -> NotifyService:
    """The notify service on ``settings``; ``providers`` adds or replaces providers (see
    NotifyService) and ``safeguards`` replaces the configured ones."""
    runtime = Runtime.build(settings, SERVICE, MIGRATIONS, bus=bus)
    return NotifyService(runtime, {**configured_factories(settings), **(providers or {})},
                         safeguards or configured_safeguards(settings, runtime.db))
