"""Prometheus metrics, one registry per process.

Labels stay bounded: event types, queue names, routes, statuses, channels,
providers and tenant slugs — never phone numbers or ids.

Under gunicorn (``hysbys serve``: several worker processes behind one port) each
scrape reaches one worker, so the values live in prometheus-client's
multiprocess files: ``hysbys serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` (one per
pod, emptied at start) before this module is imported, marks a worker's files
dead when it exits, and :meth:`Metrics.exposition` then sums every worker's
counters and histograms.  Gauges say how they combine (``multiprocess_mode``):
the ones read at scrape time are the most recent value of a live worker.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import Gauge as _Gauge

from shared import topology

if TYPE_CHECKING:   # shared.bus imports this module
    from shared.bus import Bus

log = logging.getLogger(__name__)

# A gauge read at scrape time (queue depths, outbox, provider state, lag): the value the
# worker serving the scrape has just read, never a dead worker's.
GaugeMode = Literal["all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum",
                    "mostrecent", "livemostrecent"]
SCRAPE_TIME: GaugeMode = "livemostrecent"


def Gauge(name: str, documentation: str, labelnames: Iterable[str] = (), *,  # noqa: N802
          multiprocess_mode: GaugeMode = SCRAPE_TIME, **kwargs: Any) -> _Gauge:
    return _Gauge(name, documentation, labelnames, multiprocess_mode=multiprocess_mode, **kwargs)



class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        self.http_latency = Histogram(
            "hysbys_http_request_duration_seconds", "HTTP request latency",
            ["service", "method", "route", "status"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.events_published = Counter(
            "hysbys_events_published_total", "Events published to the broker", ["type"], registry=r)
        self.events_consumed = Counter(
            "hysbys_events_consumed_total", "Events handled and acked", ["queue", "type"], registry=r)
        self.events_retried = Counter(
            "hysbys_events_retried_total", "Events sent to a delay queue for a retry",
            ["queue", "type"], registry=r)
        self.events_dead_lettered = Counter(
            "hysbys_events_dead_lettered_total", "Events moved to a dead-letter queue",
            ["queue"], registry=r)
        self.events_split = Counter(
            "hysbys_events_split_total", "Batch events one item refused for good, handled "
            "again one item at a time", ["queue", "type"], registry=r)
        self.event_items_consumed = Counter(
            "hysbys_event_items_consumed_total", "Items of batch events handled and acked "
            "(a single event counts one)", ["queue", "type"], registry=r)
        self.events_duplicate = Counter(
            "hysbys_events_duplicate_total", "Redelivered events the inbox turned into no-ops",
            ["consumer"], registry=r)
        self.notifications = Counter(
            "hysbys_notifications_total", "Notification status changes",
            ["status", "channel", "provider", "tenant"], registry=r)
        self.provider_latency = Histogram(
            "hysbys_provider_request_duration_seconds", "Provider call latency",
            ["provider", "outcome"], registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.provider_calls = Counter(
            "hysbys_provider_calls_total", "Hand-offs attempted, one per provider call",
            ["provider"], registry=r)
        self.provider_errors = Counter(
            "hysbys_provider_errors_total", "Provider calls that failed", ["provider", "kind"],
            registry=r)
        self.outbox_backlog = Gauge(
            "hysbys_outbox_backlog", "Outbox events not yet published", ["service"], registry=r)
        self.outbox_oldest_age = Gauge(
            "hysbys_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox event",
            ["service"], registry=r)
        self.queue_depth = Gauge(
            "hysbys_queue_messages", "Messages ready in a queue", ["queue"], registry=r)
        self.queue_consumers = Gauge(
            "hysbys_queue_consumers", "Consumers attached to a queue", ["queue"], registry=r)
        self.scheduler_lag = Gauge(
            "hysbys_scheduler_lag_seconds", "now minus the due time of the oldest unsent occurrence",
            registry=r)
        self.inbound_messages = Counter(
            "hysbys_inbound_messages_total", "Replies received", ["provider", "keyword"], registry=r)
        # Provider health as the dispatchers last wrote it to provider_states, read at
        # scrape time (services/notify/ops.py), so every notify process reports it.
        self.provider_circuit = Gauge(
            "hysbys_provider_circuit_state",
            "1 for the provider's current circuit-breaker state, 0 for the other states",
            ["provider", "state"], registry=r)
        self.provider_error_ratio = Gauge(
            "hysbys_provider_recent_error_ratio",
            "Share of the provider's calls in the last minute that failed", ["provider"], registry=r)
        self.provider_state_age = Gauge(
            "hysbys_provider_state_age_seconds",
            "Seconds since a dispatcher last reported on the provider", ["provider"], registry=r)
        # outbound HTTP sent after commit (notify's delivery-status callbacks): outcome
        # is delivered | retried | refused (a 4xx, not retried) | given_up | dropped
        self.outbound_deliveries = Counter(
            "hysbys_outbound_deliveries_total",
            "Outbound HTTP calls made after commit, by kind and outcome", ["kind", "outcome"],
            registry=r)
        self.retention_purged = Counter(
            "hysbys_retention_purged_rows_total",
            "Rows of personal data deleted after their tenant's retention period",
            ["service", "table"], registry=r)
        self.retention_last_success = Gauge(
            "hysbys_retention_last_success_timestamp_seconds",
            "Unix time the retention purge last finished without error", ["service"], registry=r,
            multiprocess_mode="max")
        # Set by `hysbys serve` (gunicorn): where every worker process writes its values.
        self.multiprocess_dir: Path | None = None

    def exposition(self) -> tuple[bytes, str]:
        if self.multiprocess_dir is not None:
            # every gunicorn worker's values, read from their files at each scrape
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """gunicorn's ``child_exit`` hook: the worker's live gauges no longer count."""
    multiprocess.mark_process_dead(pid)


METRICS = Metrics()

CIRCUIT_STATES = ("closed", "half-open", "open")

_slugs: dict[str, str] = {}


def tenant_label(session, tenant_id: str) -> str:
    """The tenant's slug, for the ``tenant`` label: bounded and readable, never an id.

    Cached per process: a slug never changes, and a status change must not cost
    a query.  ``session`` is any session on a schema with the tenants table.
    """
    slug = _slugs.get(tenant_id)
    if slug is None:
        from shared.tenancy import Tenant

        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            return "unknown"
        slug = _slugs[tenant_id] = tenant.slug
    return slug


# -- the broker's figures for every queue, and rates from samples ------------------
# Used by /ops (services/notify/ops.py) and its scrape-time gauges.

def queue_figures(bus: Bus) -> tuple[list[dict], list[dict]]:
    """Every consuming queue with its DLQ, and (RabbitMQ only) the retry delay queues, read
    from the broker: ``(queues, retries)``; a figure the broker will not give is None."""
    queues, retries = [], []
    with bus.connection() as conn:
        # one attempt: an unreachable broker is reported at once, not retried per queue
        conn.ensure_connection(max_retries=0)
        for spec in topology.QUEUES:
            ready, consumers = _depth(bus, conn, spec.name)
            dead, _ = _depth(bus, conn, spec.dlq)
            queues.append({"name": spec.name, "service": spec.service, "ready": ready,
                           # the in-memory transport cannot count consumers
                           "consumers": None if bus.is_memory else consumers,
                           "dlq": spec.dlq, "dead_lettered": dead})
        if not bus.is_memory:
            for tier in topology.DELAY_TIERS:
                name = topology.delay_queue_name(tier)
                retries.append({"name": name, "ready": _depth(bus, conn, name)[0]})
    return queues, retries


def _depth(bus: Bus, conn, name: str) -> tuple[int | None, int | None]:
    try:
        return bus.queue_depth(conn, name)
    except Exception:  # noqa: BLE001 - a missing queue is shown as unknown, not a 500
        log.warning("could not read the depth of %s", name)
        return None, None


def refresh_queue_gauges(bus: Bus) -> None:
    """Depth and consumers of every queue, its DLQ and the retry tiers (not only one service's)."""
    queues, retries = queue_figures(bus)
    for q in queues:
        if q["ready"] is not None:
            METRICS.queue_depth.labels(q["name"]).set(q["ready"])
            METRICS.queue_consumers.labels(q["name"]).set(q["consumers"] or 0)
        if q["dead_lettered"] is not None:
            METRICS.queue_depth.labels(q["dlq"]).set(q["dead_lettered"])
    for r in retries:
        if r["ready"] is not None:
            METRICS.queue_depth.labels(r["name"]).set(r["ready"])


class Rates:
    """Change per minute of named figures over the last minute of samples (one per refresh)."""

    def __init__(self, window: float = 60.0, min_span: float = 4.0,
                 clock: Callable[[], float] = time.monotonic):
        self.window, self.min_span, self.clock = window, min_span, clock
        self.samples: deque[tuple[float, dict[str, float]]] = deque()

    def observe(self, values: dict[str, float | None], *, counters: bool = False
                ) -> dict[str, float | None]:
        """Record ``values`` now; answer each one's change per minute (None until measurable).

        ``counters`` only ever grow (a drop, as at midnight, restarts the measure).
        """
        now = self.clock()
        self.samples.append((now, {k: v for k, v in values.items() if v is not None}))
        while now - self.samples[0][0] > self.window:   # the newest always stays
            self.samples.popleft()
        then, old = self.samples[0]
        span = now - then
        out: dict[str, float | None] = {}
        for name, value in values.items():
            if value is None or name not in old or span < self.min_span:
                out[name] = None
                continue
            change = (value - old[name]) * 60.0 / span
            out[name] = None if counters and change < 0 else change
        return out


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.start
        return False


# -- the HTTP endpoints of a process without an API (workers, dispatcher, ticker) ---------

def serve_process_endpoints(host: str, port: int, *, alive: Callable[[], bool],
                            readiness: Callable[[], dict[str, str]]):
    """``/metrics``, ``/healthz`` and ``/readyz`` for a worker, the dispatcher or the ticker,
    on a thread of their own; returns the server (``shutdown()`` stops it).

    ``/healthz`` is 200 while every loop of the process is running (``alive``) and 503
    once one has died, so the orchestrator restarts it; ``/readyz`` is the API's check
    with the broker required (a worker's work is the broker's messages)."""
    import json
    import threading
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from shared.http import readiness_status

    class _Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class _Quiet(WSGIRequestHandler):
        def log_message(self, *_args):   # scrapes and probes every few seconds: no access log
            pass

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body, content_type = METRICS.exposition()
            start_response("200 OK", [("Content-Type", content_type)])
            return [body]
        payload: dict[str, object]
        if path == "/healthz":
            ok = alive()
            status, code, payload = ("200 OK", 200, {"status": "ok"}) if ok else (
                "503 Service Unavailable", 503, {"status": "unavailable",
                                                "reason": "a loop of this process has stopped"})
        elif path == "/readyz":
            checks = readiness()
            verdict, code = readiness_status(checks, broker_required=True)
            status = "200 OK" if code == 200 else "503 Service Unavailable"
            payload = {"status": verdict, "checks": checks}
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(payload).encode()]

    server = make_server(host, port, app, server_class=_Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="process-endpoints", daemon=True).start()
    return server
