"""SMS text rules, phone numbers, templates and events: the pure parts of the kernel."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notify.templates import MissingPersonalisation, render, render_message
from shared import events, phone, smstext


@pytest.mark.parametrize("text,encoding,fragments", [
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),          # extension characters count double
    ("€" * 81, "GSM-7", 2),
    ("Ffoniwch y ganolfan ddydd Mawrth", "GSM-7", 1),
    ("Diolch ŵyr", "UCS-2", 1),         # ŵ is not GSM: UCS-2, and it is kept
    ("â" * 70, "UCS-2", 1),
    ("â" * 71, "UCS-2", 2),
    ("é à è ù ì ò Ä Ö Ü ä ö ü É", "GSM-7", 1),   # these Welsh letters are GSM
])
def test_encoding_and_fragments_follow_gsm_03_38(text, encoding, fragments):
    info = smstext.analyse(text)
    assert (info.encoding, info.fragments) == (encoding, fragments)


def test_welsh_circumflexes_are_never_stripped_but_smart_quotes_become_gsm():
    assert smstext.normalise("Mae’r bws yn “hwyr” – sori. Tŷ ŵyr") == \
        "Mae'r bws yn \"hwyr\" - sori. Tŷ ŵyr"


@given(st.text(max_size=1000))
def test_fragments_are_enough_for_every_unit(text):
    info = smstext.analyse(text)
    per_fragment = (160 if info.units <= 160 else 153) if info.encoding == "GSM-7" else \
        (70 if info.units <= 70 else 67)
    assert info.fragments * per_fragment >= info.units
    assert info.fragments >= 1


@pytest.mark.parametrize("raw", ["07700 900123", "+44 7700 900123", "0044 7700 900123",
                                 "(07700) 900-123", "447700900123"])
def test_a_uk_number_written_any_common_way_is_the_same_recipient(raw):
    assert phone.normalise(raw) == "+447700900123"


@pytest.mark.parametrize("raw,why", [("", "empty"), ("0770", "too short"),
                                     ("07700 900123 999", "too long"), ("hello", "not digits")])
def test_an_invalid_number_says_why(raw, why):
    with pytest.raises(phone.InvalidPhoneNumber) as err:
        phone.normalise(raw)
    assert str(err.value).startswith("Not a valid phone number")


def test_placeholders_match_ignoring_case_spaces_underscores_and_hyphens():
    assert render("Hi ((First Name)), ((bin-type))", {"first_name": "Siân", "BIN TYPE": "du"}) \
        == "Hi Siân, du"


def test_conditional_placeholders_show_their_text_only_when_truthy():
    assert render("Bins((garden?? and garden waste)).", {"garden": "yes"}) == \
        "Bins and garden waste."
    assert render("Bins((garden?? and garden waste)).", {"garden": "no"}) == "Bins."


def test_missing_personalisation_names_every_missing_field():
    with pytest.raises(MissingPersonalisation) as err:
        render_message("sms", {"en": "((a)) ((b))", "cy": "((a)) ((c))"}, {}, {"a": 1}, None)
    assert str(err.value) == "Missing personalisation: c, b"   # Welsh body checked first


def test_unknown_language_is_bilingual_welsh_first():
    r = render_message("sms", {"en": "Hello", "cy": "Helo"}, {}, {}, None)
    assert r.body == "Helo\n\nHello" and r.language == "cy+en"
    assert render_message("sms", {"en": "Hello", "cy": "Helo"}, {}, {}, "en").body == "Hello"


def test_an_event_survives_the_wire_and_is_checked_against_its_schema():
    e = events.make("subscriber.opted_out", uuid.uuid4(), "cid-1", recipient="+447700900123")
    back = events.Event.from_json(e.to_json())
    assert (back.id, back.type, back.data["recipient"], back.correlation_id) == \
        (e.id, e.type, "+447700900123", "cid-1")
    with pytest.raises(events.EventError):
        events.make("subscriber.opted_out", uuid.uuid4()).to_json()   # recipient missing
    with pytest.raises(events.EventError):
        events.Event.from_json(b"\xff not json")
    with pytest.raises(events.EventError):
        events.Event.from_json('{"id": "x"}')
