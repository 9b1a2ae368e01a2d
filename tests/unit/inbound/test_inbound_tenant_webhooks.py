"""Signed webhooks to a tenant's own system: signature, replay protection, retry verdicts."""
from __future__ import annotations

import time

import pytest
from http_fakes import FakeEndpoint
from inbound_support import WEBHOOK_SECRET, outbox_events, seed_tenant, twilio_form

from services.inbound import tenant_webhooks
from services.inbound.tenant_webhooks import SIGNATURE_HEADER, WebhookFailed, sign, verify
from shared import events as shared_events

BOUND = ("service_request.created", "service_request.updated", "inbound.message.received")


@pytest.fixture
def endpoint():
    fake = FakeEndpoint()
    yield fake
    fake.close()


@pytest.fixture
def hooked(inbound, endpoint):
    return seed_tenant(inbound, config={"webhook_url": endpoint.url + "/hysbys"})


def deliver_all(inbound) -> None:
    """Hand the outbox's webhook events to the inbound.webhooks handler, as the worker would."""
    handler = inbound.queue_handlers()["inbound.webhooks"]
    for event in outbox_events(inbound):
        if event.type in BOUND:
            handler(shared_events.Event.from_json(event.to_json()))


def test_a_reply_and_the_request_it_made_are_posted_signed(inbound, hooked, endpoint,
                                                           post_twilio):
    post_twilio(twilio_form("Mae'r bin wedi torri"))
    deliver_all(inbound)

    kinds = [r.json()["type"] for r in endpoint.received]
    assert kinds == ["inbound.message.received", "service_request.created"]
    reply, created = endpoint.received
    assert reply.path == "/hysbys"
    assert reply.json()["data"]["body"] == "Mae'r bin wedi torri"
    assert reply.json()["data"]["service_request"] == created.json()["data"]["reference"]
    assert created.json()["data"]["history"][0]["status"] == "open"
    for got in endpoint.received:
        assert verify(WEBHOOK_SECRET, got.headers[SIGNATURE_HEADER], got.body, time.time())
        assert got.headers["X-Hysbys-Delivery"] == got.json()["id"]


def test_a_5xx_raises_so_the_bus_retries_and_the_retry_is_delivered(inbound, hooked, endpoint,
                                                                   post_twilio):
    endpoint.statuses = [503, 200]
    post_twilio(twilio_form("STOP"))
    handler = inbound.queue_handlers()["inbound.webhooks"]
    [received] = [e for e in outbox_events(inbound) if e.type == "inbound.message.received"]

    with pytest.raises(WebhookFailed):
        handler(received)
    handler(received)            # the bus's retry, from a delay queue
    handler(received)            # a redelivery after it was delivered: not posted again
    assert len(endpoint.received) == 2
    first, second = endpoint.received
    assert first.body == second.body
    assert first.headers["X-Hysbys-Delivery"] == second.headers["X-Hysbys-Delivery"]


@pytest.mark.parametrize("status", [429, 408, 500, 502])
def test_busy_or_failing_endpoints_are_retried(inbound, hooked, endpoint, post_twilio, status):
    endpoint.statuses = [status]
    post_twilio(twilio_form("STOP"))
    [received] = [e for e in outbox_events(inbound) if e.type == "inbound.message.received"]
    with pytest.raises(WebhookFailed):
        inbound.queue_handlers()["inbound.webhooks"](received)


def test_an_endpoint_that_does_not_answer_is_retried(inbound, post_twilio):
    gone = FakeEndpoint()
    url = gone.url
    gone.close()
    seed_tenant(inbound, config={"webhook_url": url})
    post_twilio(twilio_form("STOP"))
    [received] = [e for e in outbox_events(inbound) if e.type == "inbound.message.received"]
    with pytest.raises(WebhookFailed):
        inbound.queue_handlers()["inbound.webhooks"](received)


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_a_4xx_is_the_tenant_s_configuration_and_is_not_retried(inbound, hooked, endpoint,
                                                               post_twilio, status):
    endpoint.statuses = [status]
    post_twilio(twilio_form("STOP"))
    deliver_all(inbound)
    assert len(endpoint.received) == 1


def test_without_a_webhook_url_nothing_is_posted(inbound, tenant, endpoint, post_twilio):
    post_twilio(twilio_form("Helo"))
    deliver_all(inbound)
    assert endpoint.received == []


def test_without_a_secret_nothing_is_posted_unsigned(inbound, endpoint, post_twilio):
    seed_tenant(inbound, config={"webhook_url": endpoint.url}, secrets={
        "providers": {"twilio": {"auth_token": "twilio-auth-token-for-tests"}}})
    post_twilio(twilio_form("Helo"))
    deliver_all(inbound)
    assert endpoint.received == []


# -- the signature and its replay protection (what a tenant's receiver checks) -------------

BODY = b'{"id":"e1","type":"service_request.created"}'
NOW = 1_795_000_000


def test_a_signature_made_now_with_the_secret_verifies():
    assert verify("s3cret", sign("s3cret", BODY, NOW), BODY, NOW)


@pytest.mark.parametrize("header, body, now", [
    (sign("other-secret", BODY, NOW), BODY, NOW),                      # forged
    (sign("s3cret", BODY, NOW), BODY + b" ", NOW),                     # body changed
    (sign("s3cret", BODY, NOW), BODY, NOW + 301),                      # stale: a replay
    (sign("s3cret", BODY, NOW + 301), BODY, NOW),                      # from the future
    (sign("s3cret", BODY, NOW).replace(f"t={NOW}", f"t={NOW + 1}"), BODY, NOW),  # t moved
    ("v1=" + sign("s3cret", BODY, NOW).split("v1=")[1], BODY, NOW),   # no timestamp
    (f"t={NOW}", BODY, NOW),                                          # no signature
    ("", BODY, NOW), (None, BODY, NOW), ("t=abc,v1=zz", BODY, NOW),    # missing, garbage
])
def test_forged_changed_stale_or_malformed_signatures_do_not_verify(header, body, now):
    assert not verify("s3cret", header, body, now)


def test_each_attempt_is_signed_afresh_so_a_late_retry_is_not_stale():
    delivery = tenant_webhooks.Delivery("http://x", BODY, "s3cret", "e1", "t")
    first = sign(delivery.secret, delivery.body, NOW)
    retry = sign(delivery.secret, delivery.body, NOW + 600)
    assert first != retry
    assert verify("s3cret", retry, BODY, NOW + 600)
    assert not verify("s3cret", first, BODY, NOW + 600)


# -- Standard Webhooks: what an off-the-shelf library verifies ------------------------------

def test_a_delivered_webhook_verifies_with_the_standard_webhooks_library(inbound, hooked, endpoint,
                                                                        post_twilio):
    import base64

    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    post_twilio(twilio_form("Mae'r golau stryd wedi diffodd"))
    deliver_all(inbound)
    assert len(endpoint.received) == 2
    as_tenant = Webhook("whsec_" + base64.b64encode(WEBHOOK_SECRET.encode()).decode())
    for got in endpoint.received:
        payload = as_tenant.verify(got.body, dict(got.headers))
        assert payload == got.json() and payload["id"] == got.headers["webhook-id"]
        # the earlier header is still sent, and still verifies, for one release
        assert verify(WEBHOOK_SECRET, got.headers[SIGNATURE_HEADER], got.body, time.time())
    reply = endpoint.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(b"another tenant's secret").verify(reply.body, dict(reply.headers))
    with pytest.raises(WebhookVerificationError):
        as_tenant.verify(reply.body.replace(b"golau", b"gola"), dict(reply.headers))


def test_a_retry_keeps_its_webhook_id_and_is_signed_afresh(inbound, hooked, endpoint, post_twilio):
    endpoint.statuses = [503, 200]
    post_twilio(twilio_form("STOP"))
    [received] = [e for e in outbox_events(inbound) if e.type == "inbound.message.received"]
    handler = inbound.queue_handlers()["inbound.webhooks"]
    with pytest.raises(WebhookFailed):
        handler(received)
    handler(received)
    first, second = endpoint.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(received.id)
    assert first.headers["webhook-signature"].startswith("v1,")


def test_the_standard_signature_is_the_specs_hmac():
    import base64
    import hashlib
    import hmac

    headers = tenant_webhooks.standard_headers("s3cr3t", "msg_1", BODY, NOW)
    expected = base64.b64encode(hmac.new(b"s3cr3t", f"msg_1.{NOW}.".encode() + BODY,
                                         hashlib.sha256).digest()).decode()
    assert headers == {"webhook-id": "msg_1", "webhook-timestamp": str(NOW),
                       "webhook-signature": f"v1,{expected}"}
APPOINTMENT_EVENTS = ("appointment.confirmed", "appointment.cancelled",
                      "appointment.rearrange_requested")


def test_the_board_s_system_is_bound_to_hear_every_appointment_reply():
    from shared import topology

    assert set(APPOINTMENT_EVENTS) <= set(topology.queue_spec("inbound.webhooks").event_types)


@pytest.mark.parametrize("body, event_type", [
    ("CADARNHAU 4821", "appointment.confirmed"), ("CANSLO 4821", "appointment.cancelled"),
    ("AILDREFNU 4821", "appointment.rearrange_requested"),
])
def test_each_appointment_reply_is_posted_signed_to_the_board(inbound, hooked, endpoint,
                                                              scheduler, post_twilio, body,
                                                              event_type):
    from inbound_support import CITIZEN

    appointment = scheduler.book(CITIZEN, "RENAL-1001", "4821")
    post_twilio(twilio_form(body))
    handler = inbound.queue_handlers()["inbound.webhooks"]
    [event] = [e for e in outbox_events(inbound) if e.type == event_type]
    handler(shared_events.Event.from_json(event.to_json()))

    [got] = endpoint.received
    assert got.headers["X-Hysbys-Event"] == event_type
    assert verify(WEBHOOK_SECRET, got.headers[SIGNATURE_HEADER], got.body, time.time())
    data = got.json()["data"]
    assert (data["appointment_id"], data["external_reference"], data["reply_code"],
            data["action"], data["recipient"]) == (
        appointment, "RENAL-1001", "4821", event_type.split(".", 1)[1], CITIZEN)
    assert data["reply"]["body"] == body


def test_an_appointment_webhook_is_retried_through_the_same_path(inbound, hooked, endpoint,
                                                                 scheduler, post_twilio):
    from inbound_support import CITIZEN

    scheduler.book(CITIZEN, "RENAL-1001", "4821")
    endpoint.statuses = [503, 200]
    post_twilio(twilio_form("CANSLO 4821"))
    [event] = [e for e in outbox_events(inbound) if e.type == "appointment.cancelled"]
    handler = inbound.queue_handlers()["inbound.webhooks"]
    with pytest.raises(WebhookFailed):
        handler(event)
    handler(event)     # the bus's retry
    handler(event)     # delivered: not posted again (the inbox row)
    assert len(endpoint.received) == 2
    assert endpoint.received[0].headers["X-Hysbys-Delivery"] == \
        endpoint.received[1].headers["X-Hysbys-Delivery"]
