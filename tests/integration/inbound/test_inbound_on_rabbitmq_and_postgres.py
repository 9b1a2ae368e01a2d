"""Inbound on RabbitMQ and PostgreSQL: a flood stored once, webhooks retried through the
delay queues, dead letters replayed with ``hysbys dlq replay``."""
from __future__ import annotations

import io
import json
import threading
import time
import uuid
from contextlib import redirect_stdout

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from services import cli
from services.inbound.models import InboundMessage, ServiceRequest
from services.inbound.tenant_webhooks import SIGNATURE_HEADER, verify
from services.inbound.wiring import build
from shared import events
from shared.crypto import SecretBox
from tests.conftest import eventually
from tests.unit.inbound.http_fakes import FakeEndpoint

pytestmark = pytest.mark.integration

NUMBER = "+447700900600"
CITIZEN = "+447700900123"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
SECRET = "webhook-secret-for-integration-tests"


class NoScheduler:
    def next_collection(self, tenant_id, phone):
        from services.inbound.scheduler_client import UNAVAILABLE, Lookup
        return Lookup(UNAVAILABLE)

    subscriber = citizen = next_collection


@pytest.fixture
def endpoint():
    fake = FakeEndpoint()
    yield fake
    fake.close()


@pytest.fixture
def inbound(real_settings, endpoint):
    service = build(real_settings, lookups=NoScheduler())
    service.runtime.migrate()
    box = SecretBox(real_settings.secret_key)
    tenant_id = str(uuid.uuid4())
    snapshot = events.make(
        "tenant.changed", tenant_id, slug="penfro", name="Cyngor Penfro", revision=1,
        default_language="cy", config={"inbound_numbers": [NUMBER],
                                       "reply_template_id": str(uuid.uuid4()),
                                       "webhook_url": endpoint.url + "/hooks"},
        config_encrypted=box.encrypt_json({"providers": {"twilio": {"auth_token": TWILIO_TOKEN}},
                                           "webhook_secret": SECRET}), api_keys=[])
    service.queue_handlers()["inbound.events"](events.Event.from_json(snapshot.to_json()))
    service.tenant_id = tenant_id
    yield service
    service.runtime.db.dispose()


@pytest.fixture
def running(inbound):
    background = inbound.background()
    background.start()
    assert background.wait_ready(15)
    yield inbound
    background.stop()


def signed_post(service, body: str, sid: str | None = None, app=None):
    form = {"MessageSid": sid or "SM" + uuid.uuid4().hex, "From": CITIZEN, "To": NUMBER,
            "Body": body}
    url = service.runtime.settings.public_url("inbound") + "/webhooks/twilio/sms"
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    # one app shared by every thread, as a server has: building Flask apps in several
    # threads at once trips a CPython 3.11 compiler bug, not what this test is about
    return (app or service.create_app()).test_client().post(
        "/webhooks/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})


def count(service, model) -> int:
    with service.runtime.db.read() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_the_same_message_sid_from_many_threads_is_stored_once_on_postgres(inbound):
    sid = "SM" + "c" * 32
    statuses: list[int] = []
    app = inbound.create_app()

    def deliver():
        statuses.append(signed_post(inbound, "Mae'r bin yn dal yma", sid, app).status_code)
    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert statuses == [200] * 10
    assert count(inbound, InboundMessage) == 1
    assert count(inbound, ServiceRequest) == 1


def test_a_reply_reaches_the_tenant_s_webhook_signed_after_a_503_is_retried(running, endpoint):
    endpoint.statuses = [503, 200]
    signed_post(running, "Oes bin newydd ar gael?")

    def delivered():
        kinds = [r.json()["type"] for r in endpoint.received
                 if r.headers.get("X-Hysbys-Delivery")]
        return kinds if {"inbound.message.received", "service_request.created"} <= set(
            kinds) and len(endpoint.received) >= 3 else None
    eventually(delivered, timeout=30, message="webhooks delivered after a retry")
    for got in endpoint.received:
        assert verify(SECRET, got.headers[SIGNATURE_HEADER], got.body, time.time())
    ids = [r.headers["X-Hysbys-Delivery"] for r in endpoint.received]
    assert len(ids) == 3 and len(set(ids)) == 2, "the 503'd delivery came again, once"


def test_a_dead_lettered_webhook_is_delivered_by_hysbys_dlq_replay(running, endpoint,
                                                                   monkeypatch):
    signed_post(running, "Diolch")
    eventually(lambda: len(endpoint.received) >= 2, message="first deliveries")
    first = endpoint.received[0]
    endpoint.received.clear()
    event = json.loads(first.body)
    # what the bus leaves in the DLQ after the retry budget: the event, with the error
    with running.runtime.bus.connection() as conn:
        stored = events.Event.from_json(json.dumps({
            "id": str(uuid.uuid4()), "type": event["type"], "version": 1,
            "tenant_id": running.tenant_id, "occurred_at": event["occurred_at"],
            "correlation_id": None, "data": _event_data(running, event)}))
        running.runtime.bus.send_to_queue(conn, "inbound.webhooks.dlq", stored.to_json(),
                                          {"x-error": "WebhookFailed: answered 503",
                                           "x-retries": 8}, message_id=str(stored.id))

    settings = running.runtime.settings
    for name, value in (("HYSBYS_DATABASE_URL", settings.database_url),
                        ("HYSBYS_BROKER_URL", settings.broker_url),
                        ("HYSBYS_SECRET_KEY", settings.secret_key),
                        ("HYSBYS_ADMIN_TOKEN", settings.admin_token),
                        ("HYSBYS_VAR_DIR", str(settings.var_dir))):
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["dlq", "replay", "--queue", "inbound.webhooks"]) == 0
    assert "replayed 1 message(s)" in out.getvalue()
    got = eventually(lambda: endpoint.received, message="replayed webhook delivered")
    assert got[0].headers["X-Hysbys-Delivery"] == str(stored.id)
    assert verify(SECRET, got[0].headers[SIGNATURE_HEADER], got[0].body, time.time())


def _event_data(service, delivered: dict) -> dict:
    data = delivered["data"]
    if delivered["type"] == "inbound.message.received":
        return {"message_id": data["id"], "provider_reference": "SMreplayed",
                "from_number": data["from_number"], "to_number": data["to_number"],
                "body": data["body"], "received_at": data["received_at"],
                "keyword": data["keyword"]}
    return {"request_id": data["id"], "reference": data["reference"],
            "service_code": data["service_code"], "status": data["status"]}


def test_open311_and_the_native_api_query_postgres_as_they_do_sqlite(real_settings):
    from notifications_python_client.authentication import create_jwt_token

    service = build(real_settings, lookups=NoScheduler())
    service.runtime.migrate()
    box = SecretBox(real_settings.secret_key)
    tenant_id, secret = str(uuid.uuid4()), str(uuid.uuid4())
    snapshot = events.make(
        "tenant.changed", tenant_id, slug="powys", name="Cyngor Powys", revision=1,
        default_language="en", config={"inbound_numbers": [NUMBER]}, api_keys=[{
            "id": str(uuid.uuid4()), "name": "powys live", "key_type": "live",
            "secret_encrypted": box.encrypt(secret), "scopes": [], "revoked_at": None}])
    service.queue_handlers()["inbound.events"](events.Event.from_json(snapshot.to_json()))
    api_key = f"powys_live-{tenant_id}-{secret}"
    client = service.create_app().test_client()
    try:
        for n in range(3):
            resp = client.post("/open311/v2/requests.json", data={
                "api_key": api_key, "jurisdiction_id": "powys", "service_code": "question",
                "address_string": f"{n} Stryd Fawr", "description": f"cwestiwn {n}"})
            assert resp.status_code == 201, resp.get_data(as_text=True)
        listed = client.get("/open311/v2/requests.json?jurisdiction_id=powys&status=open"
                            f"&api_key={api_key}").get_json()
        assert [r["description"] for r in listed] == ["cwestiwn 2", "cwestiwn 1", "cwestiwn 0"]
        auth = {"Authorization": "Bearer " + create_jwt_token(secret, tenant_id)}
        page = client.get("/api/service-requests?page_size=2", headers=auth).get_json()
        rest = client.get(page["links"]["next"], headers=auth).get_json()
        assert [r["description"] for r in rest["service_requests"]] == ["cwestiwn 0"]
    finally:
        service.runtime.db.dispose()
