"""Replies by text through GOV.UK Notify's received-text callback: bearer token, stored once."""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from inbound_support import CITIZEN, INBOUND_NUMBER, NOTIFY_TOKEN, outbox_events

from services.inbound.models import InboundMessage


def callback(message: str = "STOP", **overrides) -> dict:
    """A received text as GOV.UK Notify posts it (numbers without the +)."""
    return {"id": str(uuid.uuid4()), "source_number": CITIZEN.lstrip("+"),
            "destination_number": INBOUND_NUMBER.lstrip("+"), "message": message,
            "date_received": "2026-11-25T17:01:02.123456Z", "notification_id": None,
            **overrides}


def post(client, body: dict, token: str | None = NOTIFY_TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post("/webhooks/notify/inbound", json=body, headers=headers)


def stored(service) -> list[InboundMessage]:
    with service.runtime.db.read() as session:
        return list(session.scalars(sa.select(InboundMessage)).all())


def test_a_stop_with_the_tenant_s_inbound_token_is_stored_and_published(inbound, tenant, client):
    body = callback("Stop")
    resp = post(client, body)

    assert resp.status_code == 204
    [message] = stored(inbound)
    assert (message.provider, message.provider_reference, message.from_number,
            message.to_number, message.keyword) == ("notify", body["id"], CITIZEN,
                                                    INBOUND_NUMBER, "stop")
    assert message.received_at == dt.datetime(2026, 11, 25, 17, 1, 2, 123456,
                                              tzinfo=dt.UTC)
    assert [e.type for e in outbox_events(inbound)] == [
        "subscriber.opted_out", "inbound.message.received"]


def test_a_wrong_token_is_refused_and_nothing_is_stored(inbound, tenant, client):
    resp = post(client, callback(), token="someone-else-s-token")
    assert resp.status_code == 403
    assert stored(inbound) == []
    assert outbox_events(inbound) == []


def test_no_token_at_all_is_a_401(inbound, tenant, client):
    assert post(client, callback(), token=None).status_code == 401
    assert stored(inbound) == []


def test_a_number_that_is_no_tenant_s_is_refused_like_a_wrong_token(inbound, tenant, client):
    resp = post(client, callback(destination_number="447700900999"))
    wrong_token = post(client, callback(), token="guess")
    assert resp.status_code == wrong_token.status_code == 403
    assert resp.get_json() == wrong_token.get_json()
    assert stored(inbound) == []


def test_the_same_notify_id_twice_is_processed_once(inbound, tenant, client):
    body = callback("STOP")
    assert post(client, body).status_code == post(client, body).status_code == 204
    assert len(stored(inbound)) == 1
    assert len(outbox_events(inbound)) == 2


def test_a_twilio_message_sid_and_a_notify_id_that_happen_to_match_are_two_messages(
        inbound, tenant, client, post_twilio):
    from inbound_support import twilio_form

    post_twilio(twilio_form("Diolch", sid="same-reference"))
    post(client, callback("Diolch", id="same-reference"))
    assert sorted(m.provider for m in stored(inbound)) == ["notify", "twilio"]


def test_an_authenticated_callback_missing_its_message_is_a_400_naming_the_field(
        inbound, tenant, client):
    body = callback()
    del body["message"]
    resp = post(client, body)
    assert resp.status_code == 400
    assert "message" in resp.get_json()["errors"][0]["message"]
    assert stored(inbound) == []
