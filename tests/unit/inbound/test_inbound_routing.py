"""The conversation rules: what a reply leads to, given what was last sent (pure)."""
from __future__ import annotations

import datetime as dt

import pytest

from services.inbound import keywords, routing
from services.inbound.routing import Context, decide

NOW = dt.datetime(2026, 11, 25, 18, 0, tzinfo=dt.UTC)
APPOINTMENT = Context("n-1", None, "a-1", "4821", NOW)
APPOINTMENT_WITHOUT_REFERENCE = Context("n-1", None, "a-1", None, NOW)
BIN_REMINDER = Context("n-2", "c-1", None, None, NOW)


def plan(body: str, context: Context | None = None, provider_intent: str | None = None):
    return decide(keywords.parse(body), body, context, provider_intent)


@pytest.mark.parametrize("body, action", [
    ("1", routing.CONFIRM), ("CONFIRM", routing.CONFIRM), ("cadarnhau 4821", routing.CONFIRM),
    ("2", routing.CANCEL), ("CANSLO 4821", routing.CANCEL), ("cancel 4821", routing.CANCEL),
    ("Canslo", routing.CANCEL_HOW), ("CANCEL", routing.OPT_OUT), ("STOP", routing.OPT_OUT),
])
def test_next_to_an_appointment_reminder_replies_confirm_or_cancel_it(body, action):
    result = plan(body, APPOINTMENT)
    assert result.action == action
    if action in (routing.CONFIRM, routing.CANCEL):
        assert (result.appointment_id, result.appointment_reference) == ("a-1", "4821")


def test_a_bare_cancel_after_an_appointment_reminder_opts_out_and_cancels_nothing():
    result = plan("Cancel", APPOINTMENT)
    assert (result.action, result.appointment_id) == (routing.OPT_OUT, None)


def test_a_reference_that_is_not_the_reminded_appointment_s_goes_to_the_team():
    result = plan("CANSLO 9999", APPOINTMENT)
    assert result.action == routing.QUESTION
    assert "9999" in result.note


def test_a_reference_is_taken_as_typed_when_the_reminder_did_not_carry_one():
    result = plan("CANSLO 4821", APPOINTMENT_WITHOUT_REFERENCE)
    assert (result.action, result.appointment_reference) == (routing.CANCEL, "4821")


@pytest.mark.parametrize("body", ["1", "2", "CONFIRM", "CANSLO 4821"])
def test_appointment_replies_without_an_appointment_reminded_go_to_the_team(body):
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
