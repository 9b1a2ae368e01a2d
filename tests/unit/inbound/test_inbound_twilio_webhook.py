"""Replies by text through Twilio: signed, stored once, opt-outs published, answered in TwiML."""
from __future__ import annotations

import sqlalchemy as sa
from inbound_support import (
    CITIZEN,
    INBOUND_NUMBER,
    make_settings,
    outbox_events,
    seed_tenant,
    start,
    twilio_form,
    twilio_signature,
)

from services.inbound.models import InboundMessage


def stored(service) -> list[InboundMessage]:
    with service.runtime.db.read() as session:
        return list(session.scalars(sa.select(InboundMessage)).all())


def event_types(service) -> list[str]:
    return [e.type for e in outbox_events(service)]


def test_a_signed_stop_is_stored_published_as_an_opt_out_and_answered_with_empty_twiml(
        inbound, tenant, post_twilio):
    form = twilio_form("STOP")
    resp = post_twilio(form)

    assert resp.status_code == 200
    assert resp.mimetype == "text/xml"
    assert resp.get_data(as_text=True).endswith("<Response />")
    [message] = stored(inbound)
    assert (message.tenant_id, message.provider, message.provider_reference) == (
        tenant.id, "twilio", form["MessageSid"])
    assert (message.from_number, message.to_number, message.body, message.keyword) == (
        CITIZEN, INBOUND_NUMBER, "STOP", "stop")
    opted_out, received = outbox_events(inbound)
    assert opted_out.type == "subscriber.opted_out"
    assert str(opted_out.tenant_id) == tenant.id
    assert opted_out.data == {"recipient": CITIZEN, "channel": "sms", "source": "reply"}
    assert received.type == "inbound.message.received"
    assert str(received.data["message_id"]) == message.id
    assert received.data["keyword"] == "stop"


def test_the_relay_is_woken_once_a_reply_is_committed(inbound, tenant, post_twilio):
    inbound.runtime.relay.nudge.clear()
    post_twilio(twilio_form("Diolch"))
    assert inbound.runtime.relay.nudge.is_set()


def test_a_webhook_url_with_a_query_string_is_signed_with_it(inbound, tenant, post_twilio):
    assert post_twilio(twilio_form("Diolch"), query={"council": "penfro"}).status_code == 200
    assert len(stored(inbound)) == 1


def test_a_forged_signature_is_refused_and_nothing_is_stored(inbound, tenant, post_twilio):
    form = twilio_form("STOP")
    url = inbound.runtime.settings.public_url("inbound") + "/webhooks/twilio/sms"
    resp = post_twilio(form, signature=twilio_signature(url, form, token="not-the-token"))

    assert resp.status_code == 403
    assert stored(inbound) == []
    assert event_types(inbound) == []


def test_a_signature_over_different_fields_is_refused(inbound, tenant, post_twilio):
    form = twilio_form("Diolch")
    url = inbound.runtime.settings.public_url("inbound") + "/webhooks/twilio/sms"
    signature = twilio_signature(url, form)
    resp = post_twilio({**form, "Body": "STOP"}, signature=signature)
    assert resp.status_code == 403
    assert stored(inbound) == []


def test_a_request_without_a_signature_is_refused(inbound, tenant, post_twilio):
    resp = post_twilio(twilio_form("STOP"), sign=False)
    assert resp.status_code == 403
    assert stored(inbound) == []


def test_a_tenant_without_a_twilio_auth_token_cannot_be_written_to(inbound, post_twilio):
    seed_tenant(inbound, secrets={"providers": {"notify": {"inbound_token": "x"}}})
    assert post_twilio(twilio_form("STOP")).status_code == 403
    assert stored(inbound) == []


def test_the_same_message_sid_twice_is_processed_once(inbound, tenant, post_twilio):
    form = twilio_form("STOP", sid="SM" + "a" * 32)
    first, second = post_twilio(form), post_twilio(form)

    assert first.status_code == second.status_code == 200
    assert len(stored(inbound)) == 1
    assert event_types(inbound) == ["subscriber.opted_out", "inbound.message.received"]


def test_a_text_to_a_number_that_is_no_tenant_s_is_answered_and_not_stored(
        inbound, tenant, post_twilio):
    resp = post_twilio(twilio_form("STOP", to="+447700900999"))
    assert resp.status_code == 200
    assert resp.get_data(as_text=True).endswith("<Response />")
    assert stored(inbound) == []
    assert event_types(inbound) == []


def test_a_to_that_is_not_a_phone_number_is_answered_and_not_stored(inbound, tenant, post_twilio):
    resp = post_twilio(twilio_form("STOP", to="not a number"))
    assert resp.status_code == 200
    assert stored(inbound) == []


def test_behind_a_tls_proxy_the_signature_is_checked_against_the_public_https_url(tmp_path):
    service = start(make_settings(tmp_path, public_base_url="https://hysbys.example.gov.wales/"))
    try:
        seed_tenant(service)
        client = service.create_app().test_client()
        form = twilio_form("STOP")
        public = "https://hysbys.example.gov.wales/webhooks/twilio/sms?tenant=penfro"
        local = "http://localhost/webhooks/twilio/sms?tenant=penfro"

        def post_signed_for(url: str):
            return client.post("/webhooks/twilio/sms?tenant=penfro", data=form,
                               headers={"X-Twilio-Signature": twilio_signature(url, form)})

        as_seen_locally, as_twilio_signs = post_signed_for(local), post_signed_for(public)

        assert as_seen_locally.status_code == 403
        assert as_twilio_signs.status_code == 200
        assert len(stored(service)) == 1
    finally:
        service.runtime.db.dispose()


def test_twilio_s_opt_out_type_opts_out_even_when_the_text_is_no_keyword(
        inbound, tenant, post_twilio):
    resp = post_twilio(twilio_form("please leave me alone", OptOutType="STOP"))

    assert resp.get_data(as_text=True).endswith("<Response />")
    assert event_types(inbound) == ["subscriber.opted_out", "inbound.message.received"]
    assert stored(inbound)[0].keyword == "stop"


def test_twilio_s_opt_in_words_publish_an_opt_in_and_leave_the_confirmation_to_twilio(
        inbound, tenant, post_twilio):
    resp = post_twilio(twilio_form("Start"))
    assert resp.get_data(as_text=True).endswith("<Response />")
    assert event_types(inbound) == ["subscriber.opted_in", "inbound.message.received"]


def test_a_welsh_opt_out_twilio_does_not_know_is_confirmed_by_us_in_welsh(
        inbound, tenant, post_twilio):
    body = post_twilio(twilio_form("Stopio")).get_data(as_text=True)
    assert "ni fyddwch yn cael rhagor o negeseuon" in body
    assert tenant.name in body
    assert event_types(inbound) == ["subscriber.opted_out", "inbound.message.received"]


def test_help_is_answered_in_the_tenant_s_language_with_its_name(inbound, post_twilio):
    seed_tenant(inbound, slug="powys", default_language="en")
    body = post_twilio(twilio_form("help")).get_data(as_text=True)
    assert "<Message>Cyngor Powys: these are service messages." in body
    assert "negeseuon" not in body
    assert event_types(inbound) == ["inbound.message.received"]


def test_help_in_welsh_is_answered_in_welsh_whatever_the_tenant_s_language(
        inbound, post_twilio):
    seed_tenant(inbound, slug="powys", default_language="en")
    body = post_twilio(twilio_form("Cymorth")).get_data(as_text=True)
    assert "negeseuon gwasanaeth yw'r rhain. Tecstiwch STOP i beidio â'u cael" in body
    assert "service messages" not in body


def test_help_that_twilio_already_answered_gets_no_second_answer(inbound, tenant, post_twilio):
    body = post_twilio(twilio_form("HELP", OptOutType="HELP")).get_data(as_text=True)
    assert body.endswith("<Response />")


def test_a_free_text_reply_is_stored_without_a_keyword_and_answered_through_notify(
        inbound, tenant, post_twilio):
    resp = post_twilio(twilio_form("Oes modd cael bin newydd?"))
    assert resp.get_data(as_text=True).endswith("<Response />")
    [message] = stored(inbound)
    assert (message.keyword, message.action) == (None, "question")
    assert event_types(inbound) == ["inbound.message.received", "service_request.created",
                                    "notification.requested"]


def test_a_signed_request_missing_message_sid_is_a_400_and_stores_nothing(
        inbound, tenant, post_twilio):
    form = twilio_form("STOP")
    del form["MessageSid"]
    assert post_twilio(form).status_code == 400
    assert stored(inbound) == []


def test_a_stop_with_punctuation_is_honoured_and_confirmed_by_us(inbound, tenant, post_twilio):
    # Twilio may not act on "Stop." (not its bare word), so the citizen hears it from us
    body = post_twilio(twilio_form("Stop.")).get_data(as_text=True)
    # nothing known of the citizen: the language of the word they used
    assert "<Message>Cyngor Penfro: you will get no more messages from us." in body
    assert event_types(inbound)[0] == "subscriber.opted_out"


def test_dechrau_opts_in_and_is_confirmed_in_welsh(inbound, tenant, post_twilio):
    body = post_twilio(twilio_form("dechrau")).get_data(as_text=True)
    assert "byddwch yn cael ein negeseuon eto" in body
    assert event_types(inbound) == ["subscriber.opted_in", "inbound.message.received"]


def test_the_correlation_id_of_the_webhook_call_travels_on_its_events(
        inbound, tenant, client):
    form = twilio_form("STOP")
    url = inbound.runtime.settings.public_url("inbound") + "/webhooks/twilio/sms"
    client.post("/webhooks/twilio/sms", data=form, headers={
        "X-Twilio-Signature": twilio_signature(url, form), "X-Correlation-Id": "cid-4821"})
    assert {e.correlation_id for e in outbox_events(inbound)} == {"cid-4821"}


def test_help_from_a_citizen_recorded_as_welsh_is_answered_in_welsh(inbound, tenant, scheduler,
                                                                   post_twilio):
    scheduler.languages[CITIZEN] = "cy"
    body = post_twilio(twilio_form("HELP")).get_data(as_text=True)
    assert "<Message>Cyngor Penfro: negeseuon gwasanaeth yw'r rhain." in body
    assert "service messages" not in body


def _tenant_changed(service, tenant, revision: int, numbers: list[str], **data):
    """The owner's next ``tenant.changed`` for ``tenant``, applied as the worker would."""
    from inbound_support import REPLY_TEMPLATE, apply

    from shared import events
    from shared.crypto import SecretBox

    box = SecretBox(service.runtime.settings.secret_key)
    apply(service, events.make(
        "tenant.changed", tenant.id, slug=tenant.slug, name=tenant.name, revision=revision,
        default_language="cy", config={"inbound_numbers": numbers, "reply_template_id": REPLY_TEMPLATE},
        config_encrypted=box.encrypt_json({"providers": {"twilio": {
            "account_sid": "AC" + "0" * 32, "auth_token": "twilio-auth-token-for-tests",
            "from_number": numbers[0] if numbers else INBOUND_NUMBER}}}), api_keys=[], **data))


def _tenant_of_last_reply(service) -> str | None:
    with service.runtime.db.read() as session:
        return session.scalars(sa.select(InboundMessage.tenant_id)
                               .order_by(InboundMessage.received_at.desc())).first()


def test_a_number_moved_to_another_tenant_is_answered_for_the_new_one_at_the_next_text(
        inbound, tenant, post_twilio):
    """The webhook keeps each process's table of numbers; the tenants' revisions are its
    stamp, so a move replicated in between is in force at the very next text."""
    other = seed_tenant(inbound, slug="caerdydd", number="+447700900600")
    assert post_twilio(twilio_form("Helo")).status_code == 200          # table kept
    assert _tenant_of_last_reply(inbound) == tenant.id

    _tenant_changed(inbound, tenant, 2, [])
    _tenant_changed(inbound, other, 2, ["+447700900600", INBOUND_NUMBER])
    assert post_twilio(twilio_form("Helo eto")).status_code == 200
    assert _tenant_of_last_reply(inbound) == other.id


def test_a_text_to_an_archived_tenant_s_number_is_not_stored(inbound, tenant, post_twilio):
    assert post_twilio(twilio_form("Helo")).status_code == 200
    _tenant_changed(inbound, tenant, 2, [INBOUND_NUMBER], active=False)
    resp = post_twilio(twilio_form("Helo eto"))
    assert resp.status_code == 200 and resp.get_data(as_text=True).endswith("<Response />")
    assert len(stored(inbound)) == 1


def test_where_two_tenants_list_one_number_the_one_made_first_answers_with_or_without_the_table(
        inbound, tenant, post_twilio):
    from shared.tenancy import TenantNumbers, numbers_table

    seed_tenant(inbound, slug="caerdydd", number=INBOUND_NUMBER)
    with inbound.runtime.db.read() as session:
        assert numbers_table(session)[INBOUND_NUMBER].id == tenant.id
        assert TenantNumbers().find(session, INBOUND_NUMBER).id == tenant.id
