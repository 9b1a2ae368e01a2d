"""Bad input at the reply webhooks: a clear answer, nothing stored twice, nothing lost, no 500."""
from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from inbound_support import (
    CITIZEN,
    INBOUND_NUMBER,
    NOTIFY_TOKEN,
    events_of,
    twilio_form,
    twilio_signature,
)

from services.inbound.models import InboundMessage, ServiceRequest


def stored(service) -> list[InboundMessage]:
    with service.runtime.db.read() as session:
        return list(session.scalars(sa.select(InboundMessage)).all())


def count(service, model) -> int:
    with service.runtime.db.read() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_body_over_1600_characters_is_a_400_naming_the_field(inbound, tenant, post_twilio):
    resp = post_twilio(twilio_form("a" * 1601))
    assert resp.status_code == 400
    assert "Body" in resp.get_json()["errors"][0]["message"]
    assert stored(inbound) == []


def test_a_body_of_exactly_1600_characters_is_kept_whole(inbound, tenant, post_twilio):
    assert post_twilio(twilio_form("ŵ" * 1600)).status_code == 200
    assert stored(inbound)[0].body == "ŵ" * 1600


def test_an_empty_body_is_kept_and_answered_with_the_help_text(inbound, tenant, post_twilio):
    form = twilio_form("")
    resp = post_twilio(form)
    assert "negeseuon gwasanaeth" in resp.get_data(as_text=True)
    assert stored(inbound)[0].body == ""
    assert count(inbound, ServiceRequest) == 0


def test_a_form_without_a_body_field_is_read_as_empty(inbound, tenant, post_twilio):
    form = twilio_form("x")
    del form["Body"]
    assert post_twilio(form).status_code == 200
    assert stored(inbound)[0].body == ""


def test_emoji_are_kept_exactly_and_go_to_the_team(inbound, tenant, post_twilio):
    body = "👍🏽 diolch 🗑️ ✅"
    post_twilio(twilio_form(body))
    assert stored(inbound)[0].body == body
    with inbound.runtime.db.read() as session:
        assert session.scalars(sa.select(ServiceRequest.description)).one() == body


def test_control_characters_are_removed_before_anything_is_stored(inbound, tenant, post_twilio):
    assert post_twilio(twilio_form("bin\x00 glas\x07\nheddiw")).status_code == 200
    assert stored(inbound)[0].body == "bin glas\nheddiw"


def test_invalid_utf8_in_a_signed_form_is_kept_as_its_escapes(inbound, tenant, client):
    form = twilio_form("placeholder")
    # werkzeug leaves bytes that are not UTF-8 as their %-escapes; signed as read
    decoded = {**form, "Body": "bin %FF%FE glas"}
    url = inbound.runtime.settings.public_url("inbound") + "/webhooks/twilio/sms"
    raw = "&".join(f"{k}={v}" for k, v in form.items() if k != "Body").replace("+", "%2B")
    resp = client.post("/webhooks/twilio/sms", data=raw.encode() + b"&Body=bin+%FF%FE+glas",
                       content_type="application/x-www-form-urlencoded",
                       headers={"X-Twilio-Signature": twilio_signature(url, decoded)})
    assert resp.status_code == 200
    assert stored(inbound)[0].body == "bin %FF%FE glas"


def test_invalid_utf8_json_from_notify_is_a_400(inbound, tenant, client):
    resp = client.post("/webhooks/notify/inbound", data=b'{"message": "\xff\xfe"}',
                       content_type="application/json",
                       headers={"Authorization": f"Bearer {NOTIFY_TOKEN}"})
    assert resp.status_code in (400, 403)
    assert resp.get_json()["errors"]
    assert stored(inbound) == []


@pytest.mark.parametrize("sender", ["07700 900123", "0044 7700 900123", "+44 (0)7700 900123",
                                    "447700900123", "+44-7700-900-123", " +447700900123 "])
def test_a_sender_written_in_any_uk_format_is_one_citizen(inbound, tenant, post_twilio, sender):
    assert post_twilio(twilio_form("Diolch", from_=sender)).status_code == 200
    assert stored(inbound)[0].from_number == CITIZEN


@pytest.mark.parametrize("to", ["07700 900500", "0044 7700 900500", "447700900500"])
def test_the_number_texted_finds_the_tenant_in_any_format(inbound, tenant, post_twilio, to):
    assert post_twilio(twilio_form("Diolch", to=to)).status_code == 200
    assert stored(inbound)[0].to_number == INBOUND_NUMBER


@pytest.mark.parametrize("sender", ["Vodafone", "", "12", "+999 123"])
def test_a_sender_that_is_no_phone_number_is_answered_and_not_stored(
        inbound, tenant, post_twilio, sender):
    resp = post_twilio(twilio_form("STOP", from_=sender))
    assert resp.status_code == 200
    assert resp.get_data(as_text=True).endswith("<Response />")
    assert stored(inbound) == []


def test_a_flood_of_the_same_message_sid_stores_one_message_one_request_one_answer(
        inbound, tenant, post_twilio):
    form = twilio_form("Mae'r bin yn dal yma", sid="SM" + "f" * 32)
    answers = {post_twilio(form).status_code for _ in range(25)}
    assert answers == {200}
    assert len(stored(inbound)) == 1
    assert count(inbound, ServiceRequest) == 1
    assert len(events_of(inbound, "notification.requested")) == 1
    assert len(events_of(inbound, "inbound.message.received")) == 1


def test_the_same_message_sid_arriving_at_once_from_many_threads_is_stored_once(
        inbound, tenant):
    form = twilio_form("STOP", sid="SM" + "e" * 32)
    url = inbound.runtime.settings.public_url("inbound") + "/webhooks/twilio/sms"
    headers = {"X-Twilio-Signature": twilio_signature(url, form)}
    app = inbound.create_app()
    statuses: list[int] = []

    def deliver():
        statuses.append(app.test_client().post("/webhooks/twilio/sms", data=form,
                                               headers=headers).status_code)
    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 8
    assert len(stored(inbound)) == 1
    assert len(events_of(inbound, "subscriber.opted_out")) == 1


def test_a_captured_signed_request_replayed_later_changes_nothing(inbound, tenant, post_twilio):
    # Twilio's signature carries no timestamp: the MessageSid is what makes a replay inert.
    form = twilio_form("COLLI")
    post_twilio(form)
    before = (len(stored(inbound)), count(inbound, ServiceRequest))
    assert post_twilio(form).status_code == 200
    assert (len(stored(inbound)), count(inbound, ServiceRequest)) == before


def test_a_notify_callback_that_is_not_a_json_object_is_a_400(inbound, tenant, client):
    resp = client.post("/webhooks/notify/inbound", json=["not", "an", "object"],
                       headers={"Authorization": f"Bearer {NOTIFY_TOKEN}"})
    assert resp.status_code in (400, 403)
    assert stored(inbound) == []


def test_a_notify_message_over_1600_characters_is_a_400_naming_it(inbound, tenant, client):
    resp = client.post("/webhooks/notify/inbound", headers={
        "Authorization": f"Bearer {NOTIFY_TOKEN}"}, json={
        "id": str(uuid.uuid4()), "source_number": CITIZEN, "destination_number": INBOUND_NUMBER,
        "message": "x" * 1601})
    assert resp.status_code == 400
    assert "message" in resp.get_json()["errors"][0]["message"]
    assert stored(inbound) == []
