"""A notification keeps the correlation id of the request or event that asked for it:
on its row, on every status event the dispatcher, the sweeper and receipts record, and
on every log line written while it is sent — though the dispatcher runs later, in
another thread (a provider's lane), far from that request."""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

import pytest
import sqlalchemy as sa
from notifications_python_client.authentication import create_jwt_token
from twilio.request_validator import RequestValidator

from services.notify import tenants
from services.notify.providers.base import OutgoingMessage, SendResult
from services.notify.templates import create_template
from services.notify.wiring import MIGRATIONS
from shared import events
from shared.db import Database, upgrade
from shared.logs import JsonFormatter
from tests.unit.notify_providers.providers_support import Harness, ScriptedProvider

TO = "+447700900123"
AUTH_TOKEN = "tenant-twilio-auth-token"
provider_log = logging.getLogger("services.notify.providers.scripted")


class JsonLines(logging.Handler):
    """The production formatter's lines, each formatted as it is written (in the thread
    that wrote it, as a stream handler does)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def about(self, notification_id: str) -> list[dict]:
        return [line for line in self.lines if line.get("notification_id") == notification_id]


@pytest.fixture
def logs():
    handler = JsonLines()
    logger = logging.getLogger("services.notify")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def logging_answer(message: OutgoingMessage) -> SendResult:
    """What the provider says as it sends: a log line that names no notification."""
    provider_log.info("scripted provider sending a text")
    return SendResult("sent", None)


@pytest.fixture
def twilio() -> ScriptedProvider:
    return ScriptedProvider("twilio", ("sms",), *[logging_answer] * 10)


@pytest.fixture
def h(make_notify, twilio) -> Harness:
    return make_notify({"twilio": twilio})


@pytest.fixture
def client(h):
    return h.service.create_app().test_client()


class Tenant:
    def __init__(self, h: Harness):
        with h.db.transaction() as session:
            created = tenants.create_tenant(
                session, h.service.runtime.box, name="Cyngor", slug=f"t-{uuid.uuid4().hex[:8]}",
                config={"providers": ["twilio"], "quiet_hours": None, "provider_credentials": {
                    "twilio": {"account_sid": "AC" + "4" * 32, "auth_token": AUTH_TOKEN,
                               "from_number": "+447700900400"}}})
            template = create_template(session, created.id, {
                "name": "sms", "type": "sms",
                "body": {"en": "Bins out ((day))", "cy": "Biniau allan ((day))"}})
            self.id, self.api_key, self.template_id = created.id, created.api_key, template.id

    def headers(self, correlation_id: str | None = None) -> dict:
        token = create_jwt_token(self.api_key[-36:], self.api_key[-73:-37])
        headers = {"Authorization": "Bearer " + token}
        if correlation_id:
            headers["X-Correlation-Id"] = correlation_id
        return headers


def sent_event(h: Harness, nid: str) -> dict:
    [event] = [e for e in h.events("notification.sent") if e["data"]["notification_id"] == nid]
    return event


def assert_dispatch_logged_with(logs: JsonLines, nid: str, cid: str) -> None:
    about = logs.about(nid)
    assert about, "the dispatch wrote lines about the notification"
    assert {line.get("correlation_id") for line in about} == {cid}
    assert any(line["message"] == "scripted provider sending a text" for line in about), \
        "the provider's own line names the notification and its journey"


def test_an_api_send_carries_its_correlation_id_to_the_row_the_sent_event_and_the_logs(
        h, client, logs):
    tenant = Tenant(h)
    r = client.post("/v2/notifications/sms", headers=tenant.headers("journey-api-0001"),
                    json={"phone_number": TO, "template_id": tenant.template_id,
                          "personalisation": {"day": "tonight"}})
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.headers["X-Correlation-Id"] == "journey-api-0001"
    nid = r.get_json()["id"]
    assert h.row(nid).correlation_id == "journey-api-0001"
    logs.lines.clear()                      # only what the dispatcher writes from here

    assert h.dispatcher.run_once() == 1     # a remote provider: sent from its lane's thread

    assert h.row(nid).status == "sent"
    assert sent_event(h, nid)["correlation_id"] == "journey-api-0001"
    assert_dispatch_logged_with(logs, nid, "journey-api-0001")


def test_a_request_without_the_header_gets_an_id_the_notification_keeps(h, client):
    tenant = Tenant(h)
    r = client.post("/v2/notifications/sms", headers=tenant.headers(),
                    json={"phone_number": TO, "template_id": tenant.template_id,
                          "personalisation": {"day": "tonight"}})
    given = r.headers["X-Correlation-Id"]
    h.dispatcher.run_once()

    assert given and h.row(r.get_json()["id"]).correlation_id == given
    assert sent_event(h, r.get_json()["id"])["correlation_id"] == given


def requested(tenant: Tenant, cid: str | None, day: str = "Tuesday") -> events.Event:
    return events.make("notification.requested", tenant.id, cid, notification_id=uuid.uuid4(),
                       template_id=tenant.template_id, channel="sms", recipient=TO,
                       personalisation={"day": day})


def test_a_scheduler_request_carries_its_events_correlation_id_through_the_dispatcher(h, logs):
    tenant = Tenant(h)
    event = requested(tenant, "journey-ticker-0002")
    nid = str(event.data["notification_id"])

    h.service.queue_handlers()["notify.requests"](event)   # as the worker hands it over
    assert h.row(nid).correlation_id == "journey-ticker-0002"
    logs.lines.clear()
    h.dispatcher.run_once()

    assert [e["correlation_id"] for e in h.events_for(nid)] == ["journey-ticker-0002"]
    assert_dispatch_logged_with(logs, nid, "journey-ticker-0002")


def test_a_batch_of_requests_keeps_each_ones_own_id_and_no_line_shows_anothers(h, logs):
    tenant = Tenant(h)
    batch = [requested(tenant, "journey-a", "Monday"), requested(tenant, "journey-b", "Friday"),
             requested(tenant, None, "Sunday")]
    h.service.queue_handlers()["notify.requests"].batch(batch)
    logs.lines.clear()

    assert h.dispatcher.run_once() == 3     # one claim, one lane, one chunk

    for event, cid in zip(batch, ["journey-a", "journey-b", None], strict=True):
        nid = str(event.data["notification_id"])
        assert h.row(nid).correlation_id == cid
        assert sent_event(h, nid)["correlation_id"] == cid
        assert {line.get("correlation_id") for line in logs.about(nid)} == {cid}


def test_every_row_of_a_bulk_send_keeps_the_uploads_correlation_id(h, client):
    tenant = Tenant(h)
    body = {"template_id": tenant.template_id, "rows": [
        {"phone_number": "07700900111", "personalisation": {"day": "Monday"}},
        {"phone_number": "07700900222", "personalisation": {"day": "Friday"}}]}
    r = client.post("/api/bulk", headers=tenant.headers("journey-bulk-0003"), json=body)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert h.dispatcher.run_once() == 2

    with h.db.read() as session:
        rows = session.execute(sa.text("SELECT id, correlation_id FROM notifications")).all()
    assert {cid for _, cid in rows} == {"journey-bulk-0003"}
    assert {sent_event(h, nid)["correlation_id"] for nid, _ in rows} == {"journey-bulk-0003"}


def test_a_receipt_records_its_status_with_the_sends_correlation_id_not_the_callbacks(
        h, client):
    tenant = Tenant(h)
    event = requested(tenant, "journey-ticker-0004")
    nid = str(event.data["notification_id"])
    h.service.queue_handlers()["notify.requests"](event)
    h.dispatcher.run_once()
    params = {"MessageSid": h.row(nid).provider_reference, "MessageStatus": "delivered",
              "To": TO, "AccountSid": "AC" + "4" * 32}
    url = h.service.runtime.settings.public_url("notify") + "/callbacks/twilio/status"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)

    r = client.post("/callbacks/twilio/status", data=params,
                    headers={"X-Twilio-Signature": signature, "X-Correlation-Id": "twilio-call"})

    assert r.status_code == 204
    [delivered] = [e for e in h.events("notification.delivered")
                   if e["data"]["notification_id"] == nid]
    assert delivered["correlation_id"] == "journey-ticker-0004"


class WorkerDied(BaseException):
    """The process ending in the middle of a provider call."""


def test_the_sweepers_outcome_unknown_failure_carries_the_correlation_id(make_notify, logs):
    h = make_notify({"twilio": ScriptedProvider("twilio", ("sms",), WorkerDied())})
    tenant = Tenant(h)
    event = requested(tenant, "journey-ticker-0005")
    nid = str(event.data["notification_id"])
    h.service.queue_handlers()["notify.requests"](event)
    with pytest.raises(WorkerDied):
        h.dispatcher.run_once()
    h.age(nid, handoff_at=dt.timedelta(minutes=11), updated_at=dt.timedelta(minutes=11))
    logs.lines.clear()

    assert h.dispatcher.sweep() == (0, 1)

    [failed] = [e for e in h.events("notification.failed") if e["data"]["notification_id"] == nid]
    assert (failed["data"]["status"], failed["correlation_id"]) == (
        "technical-failure", "journey-ticker-0005")
    assert {line.get("correlation_id") for line in logs.about(nid)} == {"journey-ticker-0005"}


def test_migration_0012_adds_a_nullable_correlation_id_and_older_rows_have_none(tmp_path):
    db = Database.connect(f"sqlite:///{tmp_path}/notify.db", "notify")
    upgrade(db, MIGRATIONS, "0011")
    assert "correlation_id" not in {c["name"] for c in sa.inspect(db.engine)
                                    .get_columns("notifications")}
    with db.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO notifications (id, tenant_id, template_id, template_version, key_type, "
            "channel, status, urgent, attempts, created_at, updated_at) VALUES ('n1', 't1', "
            "'tp', 1, 'live', 'sms', 'created', 0, 0, :at, :at)"), {"at": dt.datetime(2026, 12, 3)})

    upgrade(db, MIGRATIONS)

    [column] = [c for c in sa.inspect(db.engine).get_columns("notifications")
                if c["name"] == "correlation_id"]
    assert column["nullable"] and column["type"].length == 64
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT correlation_id FROM notifications")).all() == [(None,)]
    db.dispose()

