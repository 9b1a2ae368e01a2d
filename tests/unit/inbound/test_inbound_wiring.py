"""The inbound service as a whole: schema, queues, HTTP basics."""
from __future__ import annotations

import sqlalchemy as sa

from services.inbound.wiring import SERVICE
from shared import topology


def test_the_migrations_create_the_service_s_tables_and_the_kernel_s(inbound):
    names = set(sa.inspect(inbound.runtime.db.engine).get_table_names())
    assert {"inbound_messages", "conversations", "outbox", "inbox", "tenants",
            "api_keys"} <= names


def test_every_inbound_queue_has_a_handler_and_every_handler_a_queue(inbound):
    assert set(inbound.queue_handlers()) == {q.name for q in topology.queues_for(SERVICE)}


def test_the_service_answers_health_and_describes_its_webhooks(client):
    assert client.get("/healthz").get_json() == {"status": "ok", "service": "inbound"}
    spec = client.get("/openapi.json").get_json()
    assert {"/webhooks/twilio/sms", "/webhooks/notify/inbound", "/api/keywords",
            "/api/service-requests/{ident}", "/open311/v2/requests.{ext}"} <= set(spec["paths"])


def test_the_worker_consumes_the_events_and_the_webhooks_queues(settings):
    from services.inbound.wiring import build

    service = build(settings)
    assert service.background().handlers.keys() == {"inbound.events", "inbound.webhooks"}
    service.runtime.db.dispose()


def test_the_scheduler_is_asked_at_its_internal_url(settings):
    from services.inbound.wiring import build

    default = build(settings)
    moved = build(settings.with_(internal_urls={"scheduler": "http://scheduler-api:8003"}))
    assert default.lookups.base_url == f"http://127.0.0.1:{settings.ports['scheduler']}"
    assert moved.lookups.base_url == "http://scheduler-api:8003"
    default.runtime.db.dispose()
    moved.runtime.db.dispose()
