"""How a reply's text is read: the keyword table, in English and Welsh."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.inbound import keywords
from services.inbound.keywords import BUILT_IN, OPT_OUT, Sense, normalise, parse


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
    ("MISSED", None), ("PRYD?", None), ("1", None), ("", None), ("   ", None), ("!!!", None),
])
def test_a_reply_is_read_as_its_keyword(body, intent):
    assert parse(body).intent == intent


@pytest.mark.parametrize("body, language", [
    ("CYMORTH", "cy"), ("STOPIO", "cy"), ("DECHRAU", "cy"), ("DIM", "cy"),
    # Welsh speakers type the English control words too: they tell nothing
    ("HELP", None), ("CANCEL", None), ("STOP", None), ("START", None), ("hello", None),
])
def test_a_welsh_keyword_says_its_sender_wants_welsh(body, language):
    assert parse(body).language == language


@pytest.mark.parametrize("body, bare", [
    ("STOP", True), (" stop\n", True), ("Stop.", False), ("stop all", False), ("STOPALL", True),
])
def test_a_keyword_is_bare_only_when_nothing_but_white_space_surrounds_it(body, bare):
    assert parse(body).bare is bare


def test_only_twilio_s_own_words_are_marked_as_acted_on_by_the_carrier():
    carrier = {word for table in (OPT_OUT, BUILT_IN) for word, sense in table.items()
               if sense.carrier}
    assert carrier == {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                       "OPTOUT", "START", "YES", "UNSTOP"}


def test_the_normalised_text_keeps_welsh_letters_and_inner_punctuation():
    assert normalise("  pryd mae'r   bin?? ") == "PRYD MAE'R BIN"
    assert parse("Diolch yn fawr iawn, ŵyr").text == "DIOLCH YN FAWR IAWN, ŴYR"


def test_a_tenant_vocabulary_can_never_redefine_an_opt_out_word():
    vocabulary = {**BUILT_IN, "STOP": Sense("missed"), "MISSED": Sense("missed")}
    assert parse("STOP", vocabulary).intent == keywords.STOP
    assert parse("missed", vocabulary).intent == "missed"


@given(st.text())
def test_reading_any_text_never_raises_and_normalising_is_stable(body):
    reading = parse(body)
    assert reading.intent in (None, "stop", "start", "help")
    assert normalise(reading.text) == reading.text


@given(st.sampled_from(sorted(OPT_OUT)), st.text(alphabet=" \t\n.!?,;:'\"()-*👍", max_size=5),
       st.text(alphabet=" \t\n.!?,;:'\"()-*👍", max_size=5), st.booleans())
def test_an_opt_out_word_is_understood_whatever_surrounds_it(word, before, after, lower):
    body = before + (word.lower() if lower else word) + after
    assert parse(body).intent == keywords.STOP
