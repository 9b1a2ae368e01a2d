"""One language rule for every text inbound writes: recorded, replied-to, keyword, both.

The pure rule is table-tested; then the same rule through the webhook, for each
road a text takes (notify's auto-reply, Twilio's inline answer, a status text).
"""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from inbound_support import (
    CITIZEN,
    apply,
    auto_reply,
    bearer,
    events_of,
    tenant_with_key,
    twilio_form,
)

from services.inbound import autoreplies
from shared import events


@pytest.mark.parametrize("recorded, replied_to, keyword, expected", [
    # the citizen's recorded language wins over everything
    ("en", "cy", "cy", "en"), ("cy", "en", "en", "cy"), ("en", None, None, "en"),
    # else the language of the message they reply to
    (None, "en", "cy", "en"), (None, "cy", "en", "cy"), (None, "cy", None, "cy"),
    # a bilingual message says nothing: the keyword's language
    (None, "cy+en", "en", "en"), (None, "cy+en", "cy", "cy"),
    # else the keyword's language
    (None, None, "en", "en"), (None, None, "cy", "cy"),
    # nothing known: both, Welsh first
    (None, None, None, None), (None, "cy+en", None, None), ("", "", "", None),
])
def test_the_language_rule(recorded, replied_to, keyword, expected):
    assert autoreplies.choose_language(recorded, replied_to, keyword) == expected


def sent(inbound, tenant, language: str) -> None:
    """A campaign text went to the citizen in ``language`` (off the wire, as notify sends it)."""
    apply(inbound, events.make(
        "notification.sent", tenant.id, notification_id=str(uuid.uuid4()), status="sent",
        channel="sms", provider="twilio", recipient=CITIZEN, campaign_id=str(uuid.uuid4()),
        language=language))


def only(reply) -> str:
    return reply.data["language"]


@pytest.mark.parametrize("body", ["WHEN", "MISSED", "Is there a bin for batteries?",
                                  "PRYD", "COLLI", "Oes bin i fatris?"])
def test_an_english_subscriber_is_answered_in_english_whatever_they_text(
        inbound, tenant, scheduler, post_twilio, body):
    scheduler.languages[CITIZEN] = "en"
    scheduler.collections[CITIZEN] = {"date": dt.date(2026, 12, 1), "round": "A",
                                      "description": {"cy": "ailgylchu", "en": "recycling"}}
    post_twilio(twilio_form(body))
    assert only(auto_reply(inbound)) == "en", "the Welsh council's default is not the rule"


def test_an_english_subscriber_texting_help_is_answered_in_english_only(
        inbound, tenant, scheduler, post_twilio):
    scheduler.languages[CITIZEN] = "en"
    body = post_twilio(twilio_form("CYMORTH")).get_data(as_text=True)
    assert "these are service messages" in body
    assert "negeseuon" not in body


def test_an_english_patient_gets_an_english_only_cancellation(inbound, tenant, scheduler,
                                                             post_twilio):
    scheduler.book(CITIZEN, "RENAL-1001", "4821", language="en")
    post_twilio(twilio_form("CANSLO 4821"))
    assert len(events_of(inbound, "appointment.cancelled")) == 1
    assert only(auto_reply(inbound)) == "en"


def test_the_citizen_s_own_choice_wins_over_the_scheduler_s_record(inbound, tenant, scheduler,
                                                                   post_twilio):
    scheduler.languages[CITIZEN] = "en"
    post_twilio(twilio_form("CYMRAEG"))
    post_twilio(twilio_form("Oes bin i fatris?"))
    assert [only(e) for e in events_of(inbound, "notification.requested")] == ["cy", "cy"]


@pytest.mark.parametrize("language", ["en", "cy"])
def test_with_nothing_recorded_a_reply_is_answered_in_the_language_of_the_text_it_answers(
        inbound, tenant, post_twilio, language):
    sent(inbound, tenant, language)
    post_twilio(twilio_form("Diolch, ond mae'r bin yn dal yma"))
    assert only(auto_reply(inbound)) == language


@pytest.mark.parametrize("body, language", [("WHEN", "en"), ("MISSED", "en"), ("PRYD", "cy"),
                                            ("COLLI", "cy")])
def test_with_nothing_else_known_the_keyword_s_language_answers(inbound, tenant, scheduler,
                                                                post_twilio, body, language):
    sent(inbound, tenant, "cy+en")    # a bilingual reminder says nothing
    scheduler.collections[CITIZEN] = None
    post_twilio(twilio_form(body))
    assert only(auto_reply(inbound)) == language


def test_with_nothing_known_free_text_is_answered_in_both_languages_welsh_first(
        inbound, tenant, post_twilio):
    post_twilio(twilio_form("👍"))
    reply = auto_reply(inbound)
    assert only(reply) is None
    assert set(reply.data["personalisation"]) == {"reply_cy", "reply_en"}


def test_an_inline_answer_with_nothing_known_is_bilingual_welsh_first(inbound, tenant,
                                                                     post_twilio):
    body = post_twilio(twilio_form("1 2 3")).get_data(as_text=True)   # a question: via notify
    assert "<Message>" not in body
    body = post_twilio(twilio_form("")).get_data(as_text=True)        # empty: the help text
    welsh = body.index("negeseuon gwasanaeth")
    assert welsh < body.index("these are service messages")


def test_the_status_text_follows_the_citizen_s_choice(inbound, scheduler, post_twilio, client):
    tenant, key = tenant_with_key(inbound)
    post_twilio(twilio_form("Oes bin i fatris?"))
    reference = auto_reply(inbound).data["reference"]
    post_twilio(twilio_form("ENGLISH"))
    r = client.patch(f"/api/service-requests/{reference}", headers=bearer(key),
                     json={"status": "closed"})
    assert r.status_code == 200
    assert [only(e) for e in events_of(inbound, "notification.requested")][-1] == "en"
