"""Replies end to end inside inbound: text in, request/appointment/language and auto-reply out."""
from __future__ import annotations

import datetime as dt
import re
import uuid

import sqlalchemy as sa
from inbound_support import (
    CITIZEN,
    REPLY_TEMPLATE,
    apply,
    auto_reply,
    events_of,
    outbox_events,
    seed_tenant,
    twilio_form,
)

from services.inbound import autoreplies
from services.inbound.models import InboundMessage, LanguagePreference, ServiceRequest
from shared import events, pii

REFERENCE = re.compile(r"^HYS-[A-HJ-NP-Z2-9]{6}$")


def remind(inbound, tenant, scheduler, *, language: str | None = None) -> tuple[str, str]:
    """Two live appointments, A (code 4821) and B (code 7310); the reminder for A was sent.

    The ``notification.sent`` goes through the service's queue handler off the wire,
    as notify publishes it: it carries A's reference, reply code and language.
    """
    a = scheduler.book(CITIZEN, "RENAL-1001", "4821",
                       starts_at=dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC))
    b = scheduler.book(CITIZEN, "RENAL-1002", "7310",
                       starts_at=dt.datetime(2026, 12, 17, 14, 0, tzinfo=dt.UTC))
    apply(inbound, events.make(
        "notification.sent", tenant.id, notification_id=str(uuid.uuid4()), status="sent",
        channel="sms", provider="twilio", recipient=CITIZEN, appointment_id=a,
        appointment_reference="RENAL-1001", reply_code="4821", language=language))
    return a, b


def requests_of(inbound) -> list[ServiceRequest]:
    with inbound.runtime.db.read() as session:
        return list(session.scalars(sa.select(ServiceRequest)))


def message(inbound) -> InboundMessage:
    with inbound.runtime.db.read() as session:
        [row] = session.scalars(sa.select(InboundMessage)).all()
        return row


# -- questions ---------------------------------------------------------------------

def test_free_text_becomes_a_question_for_the_team_and_the_citizen_gets_its_reference(
        inbound, tenant, post_twilio):
    post_twilio(twilio_form("Oes modd cael bin ailgylchu newydd?"))

    [request] = requests_of(inbound)
    assert (request.service_code, request.status, request.source, request.phone) == (
        "question", "open", "sms", CITIZEN)
    assert request.description == "Oes modd cael bin ailgylchu newydd?"
    assert REFERENCE.match(request.reference)
    assert message(inbound).reference == request.reference
    reply = auto_reply(inbound)
    assert reply.data["template_id"] == uuid.UUID(REPLY_TEMPLATE)
    assert (reply.data["channel"], reply.data["recipient"], reply.data["urgent"]) == (
        "sms", CITIZEN, True)
    assert reply.data["reference"] == request.reference
    assert reply.data["language"] is None, "nothing known of the citizen: both, Welsh first"
    assert reply.data["personalisation"]["reply_cy"].endswith(f"Cyfeirnod: {request.reference}")
    assert reply.data["personalisation"]["reply_en"].endswith(f"Reference: {request.reference}")


def test_the_auto_reply_s_notification_id_is_derived_from_the_message(inbound, tenant,
                                                                      post_twilio):
    post_twilio(twilio_form("Helo"))
    expected = uuid.uuid5(autoreplies.REPLY_NAMESPACE, f"{message(inbound).id}:reply")
    assert auto_reply(inbound).data["notification_id"] == expected


def test_a_tenant_without_an_auto_reply_template_still_gets_the_request(inbound, post_twilio):
    seed_tenant(inbound, config={"reply_template_id": None})
    post_twilio(twilio_form("Helo"))
    assert len(requests_of(inbound)) == 1
    assert events_of(inbound, "notification.requested") == []


# -- MISSED --------------------------------------------------------------------------

def test_missed_makes_a_missed_collection_request_with_the_subscriber_s_uprn_and_address(
        inbound, tenant, scheduler, post_twilio):
    scheduler.subscribers[CITIZEN] = {"uprn": "100100012345", "round": "A", "name": "Siân",
                                      "address": "1 Stryd Fawr, Hwlffordd", "postcode": "SA61 1AA"}
    post_twilio(twilio_form("COLLI"))

    [request] = requests_of(inbound)
    assert (request.service_code, request.address_id, request.address, request.zipcode) == (
        "missed_collection", "100100012345", "1 Stryd Fawr, Hwlffordd", "SA61 1AA")
    assert request.attributes["round"] == "A"
    assert "name" not in request.attributes, "only the address attributes travel"
    assert scheduler.calls == [("citizen", tenant.id, CITIZEN), ("subscriber", tenant.id, CITIZEN)]
    assert [e.type for e in outbox_events(inbound)] == [
        "inbound.message.received", "service_request.created", "notification.requested"]
    texts = auto_reply(inbound).data["personalisation"]
    assert "nad yw eich bin wedi'i gasglu (1 Stryd Fawr, Hwlffordd)" in texts["reply_cy"]


def test_missed_from_a_number_the_scheduler_does_not_know_is_still_recorded(
        inbound, tenant, scheduler, post_twilio):
    scheduler.down = True
    post_twilio(twilio_form("missed bin"))
    [request] = requests_of(inbound)
    assert request.service_code == "missed_collection"
    assert request.address_id is None
    assert request.attributes == {"lookup": "unavailable"}
    assert auto_reply(inbound).data["reference"] == request.reference


# -- WHEN / PRYD ------------------------------------------------------------------------

def test_pryd_is_answered_with_the_next_collection_in_welsh(inbound, tenant, scheduler,
                                                           post_twilio):
    scheduler.collections[CITIZEN] = {"date": dt.date(2026, 12, 1), "round": "A",
                                      "description": {"cy": "ailgylchu", "en": "recycling"}}
    post_twilio(twilio_form("Pryd?"))

    reply = auto_reply(inbound)
    assert reply.data["language"] == "cy"
    assert reply.data["personalisation"]["reply_cy"].startswith(
        "Cyngor Penfro: bydd eich casgliad nesaf (ailgylchu) ddydd Mawrth 1 Rhagfyr.")
    assert reply.data["personalisation"]["reply_en"].startswith(
        "Cyngor Penfro: your next collection (recycling) is on Tuesday 1 December.")
    assert requests_of(inbound) == []


def test_when_with_no_collection_booked_says_so(inbound, tenant, scheduler, post_twilio):
    scheduler.collections[CITIZEN] = None
    post_twilio(twilio_form("WHEN"))
    assert "no collection is booked" in auto_reply(inbound).data["personalisation"]["reply_en"]
    assert requests_of(inbound) == []


def test_when_the_scheduler_is_down_the_citizen_is_told_the_team_will_reply(
        inbound, tenant, scheduler, post_twilio):
    scheduler.down = True
    resp = post_twilio(twilio_form("PRYD"))

    assert resp.status_code == 200
    [request] = requests_of(inbound)
    assert (request.service_code, request.attributes) == (
        "question", {"note": "next collection lookup: unavailable"})
    reply = auto_reply(inbound)
    assert "Bydd aelod o'r tîm yn ateb" in reply.data["personalisation"]["reply_cy"]
    assert reply.data["reference"] == request.reference


def test_when_from_a_number_the_scheduler_does_not_know_goes_to_the_team(
        inbound, tenant, post_twilio):
    post_twilio(twilio_form("WHEN"))
    [request] = requests_of(inbound)
    assert request.attributes == {"note": "next collection lookup: unknown"}


# -- appointments --------------------------------------------------------------------------

def test_one_confirms_the_appointment_just_reminded(inbound, tenant, scheduler, post_twilio):
    a, _b = remind(inbound, tenant, scheduler)
    post_twilio(twilio_form("1"))

    [confirmed] = events_of(inbound, "appointment.confirmed")
    assert confirmed.data["appointment_id"] == uuid.UUID(a)
    assert (confirmed.data["external_reference"], confirmed.data["reply_code"],
            confirmed.data["recipient"], confirmed.data["source"]) == (
        "RENAL-1001", "4821", CITIZEN, "reply")
    assert confirmed.data["message_id"] == uuid.UUID(message(inbound).id)
    texts = auto_reply(inbound).data["personalisation"]
    assert "apwyntiad ddydd Iau 10 Rhagfyr am 09:30 wedi'i gadarnhau" in texts["reply_cy"]
    assert "appointment on Thursday 10 December at 09:30 is confirmed" in texts["reply_en"]


def test_after_a_reminder_for_a_a_reply_with_b_s_code_cancels_b_and_not_a(
        inbound, tenant, scheduler, post_twilio):
    a, b = remind(inbound, tenant, scheduler)
    post_twilio(twilio_form("CANSLO 7310"))

    [cancelled] = events_of(inbound, "appointment.cancelled")
    assert cancelled.data["appointment_id"] == uuid.UUID(b)
    assert cancelled.data["appointment_id"] != uuid.UUID(a)
    assert (cancelled.data["external_reference"], cancelled.data["reply_code"]) == (
        "RENAL-1002", "7310")
    assert events_of(inbound, "subscriber.opted_out") == []
    assert "ddydd Iau 17 Rhagfyr am 14:00 wedi'i ganslo" in auto_reply(
        inbound).data["personalisation"]["reply_cy"]
    assert ("citizen", tenant.id, CITIZEN) in scheduler.calls


def test_the_board_s_reference_names_an_appointment_too(inbound, tenant, scheduler, post_twilio):
    _a, b = remind(inbound, tenant, scheduler)
    post_twilio(twilio_form("cancel renal-1002"))
    [cancelled] = events_of(inbound, "appointment.cancelled")
    assert cancelled.data["appointment_id"] == uuid.UUID(b)


def test_two_asks_to_rearrange_the_appointment_reminded(inbound, tenant, scheduler, post_twilio):
    a, _b = remind(inbound, tenant, scheduler)
    post_twilio(twilio_form("2"))
    [asked] = events_of(inbound, "appointment.rearrange_requested")
    assert asked.data["appointment_id"] == uuid.UUID(a)
    assert events_of(inbound, "appointment.cancelled") == []
    assert "aildrefnu" in auto_reply(inbound).data["personalisation"]["reply_cy"]


def test_a_bare_cancel_opts_out_and_never_cancels_the_appointment(inbound, tenant, scheduler,
                                                                  post_twilio):
    remind(inbound, tenant, scheduler)
    post_twilio(twilio_form("CANCEL"))
    assert events_of(inbound, "appointment.cancelled") == []
    assert len(events_of(inbound, "subscriber.opted_out")) == 1


def test_an_unknown_code_cancels_nothing_answers_and_goes_to_the_team(
        inbound, tenant, scheduler, post_twilio):
    remind(inbound, tenant, scheduler, language="en")
    post_twilio(twilio_form("CANCEL 1234"))

    assert [e for e in outbox_events(inbound) if e.type.startswith("appointment.")] == []
    [request] = requests_of(inbound)
    assert request.service_code == "question"
    assert request.attributes == {"note": "code 1234 is none of this number's appointments"}
    assert message(inbound).action == "question", "the road every unrecognised reply takes"
    reply = auto_reply(inbound)
    assert reply.data["language"] == "en", "the language of the reminder it answers"
    assert reply.data["personalisation"]["reply_en"].startswith(
        "Cyngor Penfro: we did not recognise the code 1234, so nothing has been changed.")
    assert reply.data["reference"] == request.reference


def test_the_unknown_code_answer_says_how_to_reach_the_clinic(inbound, tenant, scheduler,
                                                              post_twilio, client):
    from inbound_support import bearer, tenant_with_key

    tenant, key = tenant_with_key(inbound, slug="bae-abertawe", number="+447700900501")
    r = client.put("/api/reply-texts", headers=bearer(key),
                   json={"texts": {}, "contact_phone": "01792 601800"})
    assert r.status_code == 200, r.get_json()
    scheduler.book(CITIZEN, "RENAL-1001", "4821", language="cy")
    post_twilio(twilio_form("CANSLO 9999", to="+447700900501"))
    texts = auto_reply(inbound).data["personalisation"]
    assert "nid ydym yn adnabod y cod 9999" in texts["reply_cy"]
    assert "Ffoniwch ni ar 01792 601800." in texts["reply_cy"]
    assert "Call us on 01792 601800." in texts["reply_en"]


def test_a_bare_canslo_is_told_how_to_cancel_with_the_reminder_s_code(inbound, tenant, scheduler,
                                                                      post_twilio):
    remind(inbound, tenant, scheduler)
    post_twilio(twilio_form("canslo"))
    assert events_of(inbound, "appointment.cancelled") == []
    assert "CANSLO 4821" in auto_reply(inbound).data["personalisation"]["reply_cy"]


def test_when_the_scheduler_is_down_an_appointment_reply_changes_nothing(
        inbound, tenant, scheduler, post_twilio):
    remind(inbound, tenant, scheduler)
    scheduler.down = True
    post_twilio(twilio_form("CANSLO 4821"))
    assert [e for e in outbox_events(inbound) if e.type.startswith("appointment.")] == []
    [request] = requests_of(inbound)
    assert request.attributes == {"note": "appointments lookup: unavailable"}
    assert "nid ydym wedi newid dim" in auto_reply(inbound).data["personalisation"]["reply_cy"]


# -- language ---------------------------------------------------------------------------------

def test_english_sets_the_citizen_s_language_and_later_answers_use_it(inbound, tenant,
                                                                    post_twilio):
    post_twilio(twilio_form("ENGLISH"))
    with inbound.runtime.db.read() as session:
        pref = session.get(LanguagePreference, (tenant.id, pii.lookup_hash(session, CITIZEN)))
    assert (pref.language, pref.source) == ("en", "reply")
    assert auto_reply(inbound).data["language"] == "en"

    post_twilio(twilio_form("Is there a bin for batteries?"))
    languages = [e.data["language"] for e in events_of(inbound, "notification.requested")]
    assert languages == ["en", "en"], "the Welsh council's default gave way to the choice"


def test_cymraeg_answers_in_welsh_only(inbound, post_twilio):
    seed_tenant(inbound, default_language="en")
    post_twilio(twilio_form("Cymraeg"))
    reply = auto_reply(inbound)
    assert reply.data["language"] == "cy"
    assert "yn Gymraeg" in reply.data["personalisation"]["reply_cy"]


# -- the GOV.UK Notify road --------------------------------------------------------------------

def test_help_through_gov_uk_notify_is_answered_through_notify(inbound, tenant, client):
    from inbound_support import NOTIFY_TOKEN

    client.post("/webhooks/notify/inbound", headers={"Authorization": f"Bearer {NOTIFY_TOKEN}"},
                json={"id": str(uuid.uuid4()), "source_number": CITIZEN.lstrip("+"),
                      "destination_number": tenant.number.lstrip("+"), "message": "CYMORTH"})
    assert "negeseuon gwasanaeth" in auto_reply(inbound).data["personalisation"]["reply_cy"]


def test_help_through_twilio_is_answered_inline_and_not_twice(inbound, tenant, post_twilio):
    body = post_twilio(twilio_form("HELP")).get_data(as_text=True)
    assert "<Message>" in body
    assert events_of(inbound, "notification.requested") == []


def test_a_reminder_off_the_wire_without_its_code_still_lets_1_confirm(
        inbound, tenant, scheduler, post_twilio):
    appointment = scheduler.book(CITIZEN, "RENAL-1001", "4821")
    apply(inbound, events.make(
        "notification.sent", tenant.id, notification_id=str(uuid.uuid4()), status="sent",
        channel="sms", provider="twilio", recipient=CITIZEN, appointment_id=appointment))
    post_twilio(twilio_form("1"))
    [confirmed] = events_of(inbound, "appointment.confirmed")
    assert confirmed.data["appointment_id"] == uuid.UUID(appointment)
