"""The conversation rules: what a reply leads to, given what was last sent (pure)."""
from __future__ import annotations

import datetime as dt

import pytest

from services.inbound import keywords, routing
from services.inbound.routing import Context, decide

NOW = dt.datetime(2026, 11, 25, 18, 0, tzinfo=dt.UTC)
A = routing.Booking("a-1", "RENAL-1001", "4821")
B = routing.Booking("b-2", "RENAL-1002", "7310")
BOOKED = [A, B]
APPOINTMENT = Context("n-1", None, "a-1", "RENAL-1001", NOW, "4821")
BIN_REMINDER = Context("n-2", "c-1", None, None, NOW)


def plan(body: str, context: Context | None = None, provider_intent: str | None = None,
         booked: list | None = BOOKED):
    return decide(keywords.parse(body), body, context, provider_intent, booked)


@pytest.mark.parametrize("body, action", [
    ("1", routing.CONFIRM), ("CONFIRM", routing.CONFIRM), ("cadarnhau 4821", routing.CONFIRM),
    ("2", routing.REARRANGE), ("AILDREFNU", routing.REARRANGE),
    ("CANSLO 4821", routing.CANCEL), ("cancel 4821", routing.CANCEL),
    ("cancel RENAL-1001", routing.CANCEL),
])
def test_next_to_an_appointment_reminder_replies_act_on_that_appointment(body, action):
    result = plan(body, APPOINTMENT)
    assert (result.action, result.appointment_id, result.appointment_reference) == (
        action, "a-1", "RENAL-1001")


@pytest.mark.parametrize("body, action", [
    ("CANSLO 7310", routing.CANCEL), ("cadarnhau 7310", routing.CONFIRM),
    ("AILDREFNU 7310", routing.REARRANGE), ("cancel renal-1002", routing.CANCEL),
])
def test_a_code_acts_on_the_appointment_it_names_not_the_one_reminded(body, action):
    result = plan(body, APPOINTMENT)
    assert (result.action, result.appointment_id) == (action, "b-2")


@pytest.mark.parametrize("body", ["CANSLO 4821", "cadarnhau 7310"])
def test_a_code_acts_without_any_appointment_reminded(body):
    assert plan(body, None).appointment_id in ("a-1", "b-2")
    assert plan(body, BIN_REMINDER).appointment_id in ("a-1", "b-2")


def test_a_code_that_is_none_of_the_number_s_appointments_is_unrecognised_and_changes_nothing():
    result = plan("CANSLO 9999", APPOINTMENT)
    assert (result.action, result.appointment, result.code) == (
        routing.UNRECOGNISED, None, "9999")
    assert result.answer == "unknown_code"
    assert "9999" in result.note


def test_a_code_is_unrecognised_for_a_number_with_no_live_appointments():
    assert plan("CANSLO 4821", APPOINTMENT, booked=[]).action == routing.UNRECOGNISED


def test_a_code_two_appointments_answer_to_is_never_guessed():
    twins = [routing.Booking("x", "7310", "1111"), routing.Booking("y", "R-2", "7310")]
    # the reply code wins over a board reference that happens to be the same
    assert plan("CANSLO 7310", None, booked=twins).appointment_id == "y"
    same_code = [routing.Booking("x", "R-1", "7310"), routing.Booking("y", "R-2", "7310")]
    assert plan("CANSLO 7310", None, booked=same_code).action == routing.UNRECOGNISED


@pytest.mark.parametrize("body", ["Canslo", "CANSLO"])
def test_a_bare_cancel_word_never_cancels_it_explains(body):
    result = plan(body, APPOINTMENT)
    assert (result.action, result.appointment, result.code) == (routing.CANCEL_HOW, None, "4821")


def test_a_bare_cancel_after_an_appointment_reminder_opts_out_and_cancels_nothing():
    result = plan("Cancel", APPOINTMENT)
    assert (result.action, result.appointment_id) == (routing.OPT_OUT, None)


def test_when_the_appointments_cannot_be_asked_nothing_is_changed_and_the_team_is_asked():
    for body in ("CANSLO 4821", "1", "2"):
        result = plan(body, APPOINTMENT, booked=None)
        assert (result.action, result.appointment, result.answer) == (
            routing.QUESTION, None, "appointment_unavailable")


def test_a_numbered_reply_to_an_appointment_no_longer_booked_goes_to_the_team():
    result = plan("1", APPOINTMENT, booked=[B])
    assert (result.action, result.appointment) == (routing.QUESTION, None)


@pytest.mark.parametrize("body", ["1", "2", "CONFIRM"])
def test_numbered_replies_without_an_appointment_reminded_go_to_the_team(body):
    assert plan(body, BIN_REMINDER).action == routing.QUESTION
    assert plan(body, None).action == routing.QUESTION


@pytest.mark.parametrize("body, action", [
    ("MISSED", routing.MISSED), ("PRYD", routing.WHEN), ("CYMRAEG", routing.LANGUAGE_CY),
    ("ENGLISH", routing.LANGUAGE_EN), ("HELP", routing.HELP), ("", routing.HELP),
    ("   ", routing.HELP), ("👍", routing.QUESTION), ("Diolch!", routing.QUESTION),
    ("START", routing.OPT_IN), ("dechrau", routing.OPT_IN),
])
def test_each_keyword_leads_to_its_action(body, action):
    assert plan(body, BIN_REMINDER).action == action


def test_the_provider_s_own_opt_out_verdict_wins_over_the_text():
    result = plan("CANSLO 4821", APPOINTMENT, provider_intent=keywords.STOP)
    assert (result.action, result.provider_answered) == (routing.OPT_OUT, True)


def test_a_bare_cancel_word_quotes_the_reminder_s_code_even_when_the_scheduler_is_away():
    result = plan("CANSLO", APPOINTMENT, booked=None)
    assert (result.action, result.appointment, result.code) == (routing.CANCEL_HOW, None, "4821")
