"""OpenTelemetry tracing: one trace from an API request to the provider call and beyond.

The path a send takes crosses processes and a broker, so the trace context travels
with the work, as a W3C ``traceparent``:

* **HTTP**: every request is a server span (:func:`instrument_app`), continuing an
  incoming ``traceparent`` header if the caller sent one;
* **notification row / outbox row**: what a request (or a handler) writes keeps the
  ``traceparent`` of the span it was written in (:func:`current_traceparent`);
* **broker**: the relay publishes each event in a producer span, child of its row's
  context, and sends that span's ``traceparent`` in the message headers (beside
  ``correlation_id``, which is kept as it was);
* **handler**: the consumer takes the header onto the event (``Event.traceparent``)
  and handles it in a consumer span, child of the publish;
* **provider call**: the dispatcher calls each provider in a client span, child of
  the notification row's context; the outcome events it records follow from there.

Exported by OTLP (HTTP/protobuf) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set
(:func:`configure`; the exporter reads the other ``OTEL_*`` variables itself).
Otherwise nothing is installed: the API's default tracer makes non-recording
spans, which cost a few microseconds and export nothing, and a row's stored
``traceparent`` is passed on unchanged.  Tests :func:`install` a provider of their
own (an in-memory exporter) and :func:`uninstall` it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AnyValue

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
INSTRUMENTATION = "hysbys"
_propagator = TraceContextTextMapPropagator()
_lock = threading.Lock()
_configured: trace.TracerProvider | None = None
_tracer: trace.Tracer = trace.get_tracer(INSTRUMENTATION)

__all__ = ["SpanKind", "attached", "batch_span", "configure", "consumer_span", "context_from",
           "current_traceparent", "install", "instrument_app", "span", "uninstall"]


def configure(service: str, env: Mapping[str, str] | None = None) -> bool:
    """Export spans by OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; True if it is.

    Once per process (the embedded platform's three services share one provider,
    named after the first unless ``OTEL_SERVICE_NAME`` says otherwise)."""
    global _configured, _tracer
    env = os.environ if env is None else env
    if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    with _lock:
        if _configured is not None:
            return True
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        name = env.get("OTEL_SERVICE_NAME") or f"hysbys-{service}"
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _configured = provider
        _tracer = provider.get_tracer(INSTRUMENTATION)
    log.info("tracing: exporting spans by OTLP to %s as %s", env["OTEL_EXPORTER_OTLP_ENDPOINT"], name)
    return True


def install(provider: trace.TracerProvider) -> None:
    """Use ``provider`` for this process's spans (tests: an in-memory exporter)."""
    global _tracer
    _tracer = provider.get_tracer(INSTRUMENTATION)


def uninstall() -> None:
    global _tracer
    _tracer = (_configured or trace.get_tracer_provider()).get_tracer(INSTRUMENTATION)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None outside any trace."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def context_from(traceparent: str | None) -> otel_context.Context | None:
    """A context whose parent is ``traceparent`` (None: no parent, a new trace)."""
    if not traceparent:
        return None
    return _propagator.extract({TRACEPARENT: traceparent})


@contextlib.contextmanager
def span(name: str, *, parent: str | None = None, kind: SpanKind = SpanKind.INTERNAL,
         attributes: Mapping[str, AnyValue] | None = None) -> Iterator[trace.Span]:
    """A span, child of ``parent`` (a ``traceparent``) if given, else of the current span.

    An exception escaping the block marks the span as an error and is re-raised."""
    attrs: dict[str, AnyValue] = {k: v for k, v in (attributes or {}).items() if v is not None}
    ctx = context_from(parent) if parent else None
    with _tracer.start_as_current_span(name, context=ctx, kind=kind, attributes=attrs,
                                       record_exception=True, set_status_on_exception=True) as s:
        yield s


@contextlib.contextmanager
def attached(traceparent: str | None) -> Iterator[None]:
    """Make ``traceparent`` the current context for the block (what is written there keeps it)."""
    ctx = context_from(traceparent)
    if ctx is None:
        yield
        return
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def consumer_span(event, consumer: str):
    """The consumer span of one event, child of the publish its ``traceparent`` names."""
    return span(f"handle {event.type}", parent=event.traceparent, kind=SpanKind.CONSUMER,
                attributes={"messaging.system": "rabbitmq", "messaging.message.id": str(event.id),
                            "messaging.consumer.group.name": consumer,
                            "hysbys.correlation_id": event.correlation_id,
                            "hysbys.tenant_id": str(event.tenant_id) if event.tenant_id else None})


@contextlib.contextmanager
def batch_span(events, consumer: str) -> Iterator[None]:
    """One consumer span for a batch handled in one transaction, linked to each traced event.

    (A span has one parent; the batch's events come from many traces.)  A batch of one
    is that event's own consumer span; none if no event of the batch is traced."""
    if len(events) == 1:
        with consumer_span(events[0], consumer):
            yield
        return
    links = []
    for event in events:
        ctx = context_from(event.traceparent)
        if ctx is not None:
            links.append(trace.Link(trace.get_current_span(ctx).get_span_context()))
    if not links:
        yield
        return
    with _tracer.start_as_current_span(f"handle batch of {len(events)}", kind=SpanKind.CONSUMER,
                                       links=links, attributes={
                                           "messaging.system": "rabbitmq",
                                           "messaging.batch.message_count": len(events),
                                           "messaging.consumer.group.name": consumer}):
        yield


def instrument_app(app, service: str) -> None:
    """A server span around every request of a Flask app, continuing an incoming ``traceparent``."""
    from flask import g, request

    @app.before_request
    def _start_span():
        ctx = _propagator.extract(request.headers)
        s = _tracer.start_span(f"{request.method} {request.path}", context=ctx, kind=SpanKind.SERVER,
                               attributes={"http.request.method": request.method,
                                           "url.path": request.path, "hysbys.service": service,
                                           "hysbys.correlation_id": g.get("correlation_id") or ""})
        g.otel_span = s
        g.otel_token = otel_context.attach(trace.set_span_in_context(s, ctx))

    @app.after_request
    def _name_span(response):
        s = g.get("otel_span")
        if s is not None:
            route = request.url_rule.rule if request.url_rule else None
            if route:
                s.update_name(f"{request.method} {route}")
                s.set_attribute("http.route", route)
            s.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                s.set_status(Status(StatusCode.ERROR))
        return response

    @app.teardown_request
    def _end_span(exc):
        s, token = g.pop("otel_span", None), g.pop("otel_token", None)
        if s is not None:
            if exc is not None:
                s.record_exception(exc)
                s.set_status(Status(StatusCode.ERROR))
            s.end()
        if token is not None:
            otel_context.detach(token)
