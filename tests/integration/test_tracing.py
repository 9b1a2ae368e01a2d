"""OpenTelemetry: one trace from an API send to its provider call, and on to the consumers.

The spans are read from the SDK's in-memory exporter (installed for the test, so the
process's real provider, none or OTLP, is untouched).  Run on both stacks: embedded
(memory transport, SQLite) and RabbitMQ + PostgreSQL.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import requests
from notifications_python_client.authentication import create_jwt_token
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import tracing
from shared.bus import Bus, OutgoingMessage, Worker
from tests.conftest import eventually

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.uninstall()
    provider.shutdown()


def _auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


def _tenant(url: str) -> tuple[dict, str]:
    admin = {"Authorization": "Bearer test-admin-token"}
    slug = f"olrhain-{uuid.uuid4().hex[:6]}"
    tenant = requests.post(url + "/admin/tenants", json={"name": slug, "slug": slug},
                           headers=admin, timeout=10).json()
    requests.patch(f"{url}/admin/tenants/{tenant['id']}", headers=admin, timeout=10,
                   json={"providers": ["simulator"], "quiet_hours": None}).raise_for_status()
    template = requests.post(url + "/api/templates", headers=_auth(tenant["api_key"]), timeout=10,
                             json={"name": "t", "type": "sms",
                                   "body": {"en": "Your bin is due", "cy": "Mae eich bin yn ddyledus"}})
    return tenant, template.json()["id"]


def test_one_trace_runs_from_the_api_send_to_the_provider_call_and_its_consumers(platform, spans):
    url = platform.urls()["notify"]
    tenant, template_id = _tenant(url)
    spans.clear()
    r = requests.post(url + "/v2/notifications/sms", timeout=10,
                      headers={**_auth(tenant["api_key"]), "X-Correlation-Id": "cid-olrhain-1"},
                      json={"phone_number": "07700900000", "template_id": template_id})
    assert r.status_code == 201, r.text
    nid = r.json()["id"]

    def joined_consumers():
        done = spans.get_finished_spans()
        publish_ids = {p.context.span_id for p in done if p.name == "publish notification.sent"}
        return [c for c in done if c.kind == SpanKind.CONSUMER and publish_ids
                and ((c.parent is not None and c.parent.span_id in publish_ids)
                     or any(link.context.span_id in publish_ids for link in c.links))]
    joined = eventually(joined_consumers, timeout=20,
                        message="a consumer of notification.sent joined to its publish span")
    by_name = {s.name: s for s in spans.get_finished_spans()}

    server = by_name["POST /v2/notifications/sms"]
    assert server.kind == SpanKind.SERVER
    assert server.attributes["http.response.status_code"] == 201
    assert server.attributes["hysbys.correlation_id"] == "cid-olrhain-1"
    trace_id = server.context.trace_id

    call = by_name["send sms via simulator"]
    assert call.kind == SpanKind.CLIENT and call.attributes["hysbys.notification_id"] == nid
    assert call.context.trace_id == trace_id, "the provider call is in the API request's trace"
    assert call.parent.span_id == server.context.span_id

    published = [s for s in spans.get_finished_spans() if s.name.startswith("publish notification.")]
    assert {s.name for s in published} >= {"publish notification.sent"}
    for p in published:
        assert p.kind == SpanKind.PRODUCER and p.context.trace_id == trace_id
        assert p.parent.span_id == call.context.span_id, "the outcome events follow the call"

    # a consumer of one event is its publish span's child; a batch links to each event
    assert all(c.parent is None or c.context.trace_id == trace_id for c in joined)


def test_the_message_carries_traceparent_and_correlation_id_to_the_handler(spans):
    bus = Bus("memory://")
    seen = []

    def handler(event):
        from shared import logs

        seen.append((event.traceparent, logs.correlation_id.get()))

    from shared import events, topology

    event = events.make("subscriber.opted_out", uuid.uuid4(), "cid-olrhain-2",
                        recipient="+447700900123", channel="sms", source="reply")
    spec = next(q for q in topology.QUEUES if "subscriber.opted_out" in q.event_types)
    worker = Worker(bus, {spec.name: handler}, batch_size=1)
    with bus.connection() as conn:
        bus.declare(conn, [spec])
        with tracing.span("the request"):
            parent = tracing.current_traceparent()
        bus.publish(conn, [OutgoingMessage(str(event.id), event.type, event.to_json(),
                                           event.correlation_id, parent)])
    import threading

    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    try:
        eventually(lambda: seen, timeout=10, message="the handler called")
    finally:
        worker.should_stop = True
        t.join(5)
    [publish] = [s for s in spans.get_finished_spans() if s.name == "publish subscriber.opted_out"]
    traceparent, correlation_id = seen[0]
    assert correlation_id == "cid-olrhain-2", "the correlation id is kept"
    assert traceparent.split("-")[2] == format(publish.context.span_id, "016x"), \
        "the header names the publish span"
    assert publish.context.trace_id == int(parent.split("-")[1], 16)


def test_tracing_is_off_without_an_endpoint_and_on_with_one():
    assert tracing.configure("notify", env={}) is False
    with tracing.span("no provider installed"):
        pass
    code = ("from shared import tracing\n"
            "from opentelemetry import trace\n"
            "from opentelemetry.sdk.trace import TracerProvider\n"
            "assert tracing.configure('notify')\n"
            "assert isinstance(trace.get_tracer_provider(), TracerProvider)\n"
            "with tracing.span('x'):\n"
            "    assert tracing.current_traceparent().startswith('00-')\n"
            "print(trace.get_tracer_provider().resource.attributes['service.name'])\n")
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "PYTHONPATH": ROOT}
    env.pop("OTEL_SERVICE_NAME", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hysbys-notify"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/outbox.db"
    return request.getfixturevalue("pg_url")


def test_an_outbox_keeps_the_traceparent_where_its_migration_added_the_column(database_url, spans):
    """notify's and inbound's outboxes have the column; the scheduler's has not (yet), and
    still takes every row, traced or not."""
    from pathlib import Path

    from cryptography.fernet import Fernet

    from shared import events, outbox
    from shared.crypto import SecretBox
    from shared.db import Database, encrypt_with, upgrade

    box = SecretBox(Fernet.generate_key().decode())
    got = {}
    for service in ("scheduler", "notify", "inbound"):
        db = Database.connect(database_url, service)
        encrypt_with(db.engine, box)
        upgrade(db, Path(ROOT) / "services" / service / "migrations")
        with tracing.span(f"a request to {service}"):
            traceparent = tracing.current_traceparent()
            with db.transaction() as session:
                outbox.add(session, events.make("subscriber.opted_out", uuid.uuid4(), "cid-3",
                                                recipient="+447700900123", channel="sms",
                                                source="reply"))
        with db.read() as session:
            [row] = session.execute(outbox.Relay(db, None).claim_query()).all()
        got[service] = (getattr(row, "traceparent", None), traceparent, row.correlation_id)
        db.dispose()
    assert got["scheduler"][0] is None and got["scheduler"][2] == "cid-3"
    for service in ("notify", "inbound"):
        assert got[service][0] == got[service][1] is not None, service
