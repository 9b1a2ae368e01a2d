"""How a reply's text is read: the keyword table, in English and Welsh."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.inbound import keywords
from services.inbound.keywords import (
    DEFAULT_VOCABULARY,
    FIXED,
    OPT_IN,
    OPT_OUT,
    Sense,
    normalise,
    parse,
    vocabulary,
)


@pytest.mark.parametrize("body, intent", [
    # Twilio's opt-out words
    ("STOP", "stop"), ("stop", "stop"), ("Stop.", "stop"), ("  STOP!  ", "stop"),
    ("STOPALL", "stop"), ("stop all", "stop"), ("UNSUBSCRIBE", "stop"), ("cancel", "stop"),
    ("End", "stop"), ("QUIT", "stop"), ("revoke", "stop"), ("OPTOUT", "stop"),
    ("opt-out", "stop"), ("Opt out", "stop"),
    # Welsh opt-out words
    ("DIM", "stop"), ("dim", "stop"), ("Stopio", "stop"), ("DAD-DANYSGRIFIO", "stop"),
    ("dad danysgrifio", "stop"), ("daddanysgrifio", "stop"),
    # opt-in
    ("START", "start"), ("yes", "start"), ("Unstop", "start"), ("DECHRAU", "start"),
    ("dechrau!", "start"),
    # help
    ("HELP", "help"), ("help?", "help"), ("Cymorth", "help"), ("INFO", "help"),
    # punctuation, symbols and odd spacing around the word
    ("'stop'", "stop"), ("(STOP)", "stop"), ("Stop 👍", "stop"), ("\tstop\n", "stop"),
    ("ＳＴＯＰ", "stop"),   # full-width letters from some phone keyboards
    # not keywords: sentences, later keywords, nothing at all
    ("please stop by the office", None), ("STOP sending these", None), ("stopped", None),
    ("", None), ("   ", None), ("!!!", None), ("Diolch yn fawr", None),
])
def test_a_reply_is_read_as_its_keyword(body, intent):
    assert parse(body).intent == intent


@pytest.mark.parametrize("body, language", [
    ("CYMORTH", "cy"), ("STOPIO", "cy"), ("DECHRAU", "cy"), ("DIM", "cy"),
    # English words are English: they decide only when nothing better is known
    ("HELP", "en"), ("CANCEL", "en"), ("STOP", "en"), ("START", "en"),
    # free text and numbers say nothing of a language
    ("hello", None), ("1", None),
])
def test_a_keyword_carries_its_language(body, language):
    assert parse(body).language == language


@pytest.mark.parametrize("body, bare", [
    ("STOP", True), (" stop\n", True), ("Stop.", False), ("stop all", False), ("STOPALL", True),
])
def test_a_keyword_is_bare_only_when_nothing_but_white_space_surrounds_it(body, bare):
    assert parse(body).bare is bare


def test_only_twilio_s_own_words_are_marked_as_acted_on_by_the_carrier():
    carrier = {word for table in (OPT_OUT, OPT_IN, DEFAULT_VOCABULARY)
               for word, sense in table.items() if sense.carrier}
    assert carrier == {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                       "OPTOUT", "START", "YES", "UNSTOP"}


def test_the_normalised_text_keeps_welsh_letters_and_inner_punctuation():
    assert normalise("  pryd mae'r   bin?? ") == "PRYD MAE'R BIN"
    assert parse("Diolch yn fawr iawn, ŵyr").text == "DIOLCH YN FAWR IAWN, ŴYR"


def test_a_tenant_vocabulary_can_never_redefine_an_opt_out_word():
    words = {**DEFAULT_VOCABULARY, "STOP": Sense("missed"), "COLLI": Sense("missed")}
    assert parse("STOP", words).intent == keywords.STOP
    assert parse("colli", words).intent == "missed"


@given(st.text())
def test_reading_any_text_never_raises_and_normalising_is_stable(body):
    reading = parse(body)
    assert reading.intent in (None, "stop", "start", *keywords.CONFIGURABLE)
    assert normalise(reading.text) == reading.text


@given(st.sampled_from(sorted(OPT_OUT)), st.text(alphabet=" \t\n.!?,;:'\"()-*👍", max_size=5),
       st.text(alphabet=" \t\n.!?,;:'\"()-*👍", max_size=5), st.booleans())
def test_an_opt_out_word_is_understood_whatever_surrounds_it(word, before, after, lower):
    body = before + (word.lower() if lower else word) + after
    assert parse(body).intent == keywords.STOP


# -- the tenant's keywords: MISSED, PRYD, appointments, language ----------------

@pytest.mark.parametrize("body, intent, language", [
    ("MISSED", "missed", "en"), ("missed bin", "missed", "en"), ("Colli", "missed", "cy"),
    ("Bin wedi'i fethu", "missed", "cy"), ("BIN WEDI I FETHU", "missed", "cy"),
    ("bin wedi’i fethu!", "missed", "cy"), ("heb ei gasglu", "missed", "cy"),
    ("WHEN?", "when", "en"), ("Pryd?", "when", "cy"), ("pryd mae'r bin", "when", "cy"),
    ("CONFIRM", "confirm", "en"), ("cadarnhau", "confirm", "cy"),
    ("Canslo", "cancel", "cy"), ("CYMRAEG", "cymraeg", "cy"), ("Welsh", "cymraeg", "en"),
    ("english", "english", "en"), ("Saesneg", "english", "cy"),
    ("Help", "help", "en"), ("cymorth", "help", "cy"),
])
def test_the_default_keywords_are_read_in_english_and_welsh(body, intent, language):
    reading = parse(body)
    assert (reading.intent, reading.language) == (intent, language)


@pytest.mark.parametrize("body, intent", [
    ("MISED", "missed"), ("misssed", "missed"), ("MSISED", "missed"),   # typo, double, swap
    ("CADARNAU", "confirm"), ("CONFRIM", "confirm"), ("Cymraef", "cymraeg"),
    ("ENGLSIH", "english"), ("CYMORHT", "help"),
])
def test_common_misspellings_of_longer_words_are_forgiven(body, intent):
    reading = parse(body)
    assert (reading.intent, reading.fuzzy) == (intent, True)


@pytest.mark.parametrize("body", [
    # short words are never guessed at: PRYF is an insect, not PRYD
    "PRYF", "WHNE", "COLI",
    # as near an opt-out word as anything else: a question for the team, never a guess
    "CANCLE", "STOPP", "UNSUBSCRIBED", "REVOKES",
    # a Welsh cancer patient's reply to a renal clinic is not an opt-out
    "cancer",
])
def test_typos_that_are_too_short_or_too_close_to_an_opt_out_are_not_guessed(body):
    assert parse(body).intent is None


def test_a_misspelt_opt_out_word_never_opts_anyone_out():
    for body in ("STOPP", "CANCLE", "UNSUBSCRIBED", "OPTOUTT"):
        assert parse(body).intent != keywords.STOP


@pytest.mark.parametrize("body, intent, reference", [
    ("CANSLO 4821", "cancel", "4821"), ("cancel 4821", "cancel", "4821"),
    ("Canslo #4821.", "cancel", "4821"), ("CONFIRM A4821", "confirm", "A4821"),
    ("cadarnhau 4821", "confirm", "4821"), ("CANSLOO 4821", "cancel", "4821"),
    ("AILDREFNU 4821", "rearrange", "4821"), ("rearrange 4821", "rearrange", "4821"),
])
def test_a_confirm_or_cancel_word_with_a_reference_is_an_appointment_reply(body, intent, reference):
    reading = parse(body)
    assert (reading.intent, reading.reference) == (intent, reference)


@pytest.mark.parametrize("body, intent", [("1", "confirm"), ("2", "rearrange"),
                                          (" 2. ", "rearrange")])
def test_a_number_alone_is_a_numbered_appointment_reply(body, intent):
    reading = parse(body)
    assert (reading.intent, reading.numbered) == (intent, True)


def test_a_number_alone_never_means_cancel():
    assert {parse(n).intent for n in ("1", "2")} == {"confirm", "rearrange"}


def test_a_bare_cancel_is_always_an_opt_out_and_never_an_appointment_reply():
    assert parse("CANCEL").intent == keywords.STOP
    assert parse("cancel").sense.carrier


@pytest.mark.parametrize("body", ["CANCEL please", "CANCEL MY APPOINTMENT", "3", "12"])
def test_without_a_reference_or_a_known_number_nothing_is_an_appointment_reply(body):
    assert parse(body).intent is None


def test_a_missed_phrase_may_be_followed_by_the_citizen_s_own_words():
    assert parse("COLLI bin glas heddiw").intent == keywords.MISSED
    assert parse("Missed my recycling again").intent == keywords.MISSED
    assert parse("when I called nobody answered").intent is None


def test_a_tenant_s_own_words_replace_the_defaults_of_that_intent_only():
    words = vocabulary({keywords.MISSED: {"cy": ["SBWRIEL"], "en": ["RUBBISH"]}})
    assert parse("sbwriel", words).intent == keywords.MISSED
    assert parse("sbwriel", words).language == "cy"
    assert parse("COLLI", words).intent is None
    assert parse("PRYD", words).intent == keywords.WHEN


def test_a_tenant_can_switch_an_intent_off_with_an_empty_list():
    words = vocabulary({keywords.MISSED: {"cy": [], "en": []}})
    assert parse("MISSED", words).intent is None


def test_the_fixed_words_are_the_opt_out_and_opt_in_words():
    assert {s.intent for s in FIXED.values()} == {keywords.STOP, keywords.START}
