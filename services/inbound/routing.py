"""What a reply leads to: the conversation rules.

:func:`decide` is pure: the reading of the text, the conversation context (the
last text sent to this citizen by this tenant) and what the provider already
did give one :class:`Plan`.  The rules, in order:

1. The provider's own opt-out verdict (Twilio's ``OptOutType``), then STOP/START
   words: opt-out and opt-in come before anything else.
2. HELP.  An empty text is answered with the help text too.
3. Appointment replies, only next to an appointment reminder: ``1`` / ``CONFIRM``
   / ``CADARNHAU 4821`` confirm; ``2`` / ``CANSLO 4821`` cancel.  A reference
   that is not the reminded appointment's makes a question for the team.  A
   bare cancel word other than Twilio's (``CANSLO``) is answered with how to
   cancel (reply 2); a bare ``CANCEL`` never gets here: it is an opt-out.
4. MISSED → a missed-collection request; WHEN/PRYD → the next collection date;
   CYMRAEG/ENGLISH → the citizen's language.
5. Anything else → a question for the team.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.inbound import keywords

OPT_OUT, OPT_IN, HELP = "opt_out", "opt_in", "help"
MISSED, WHEN, QUESTION = "missed", "when", "question"
CONFIRM, CANCEL, CANCEL_HOW = "confirm", "cancel", "cancel_how"
LANGUAGE_CY, LANGUAGE_EN = "language_cy", "language_en"
# a request of one of the tenant's own service types, by its keywords (catalogue.plan_for)
REPORT = "report"

_SIMPLE = {keywords.MISSED: MISSED, keywords.WHEN: WHEN, keywords.CYMRAEG: LANGUAGE_CY,
           keywords.ENGLISH: LANGUAGE_EN}


@dataclass(frozen=True)
class Context:
    """The last text the platform sent this citizen from this tenant."""

    notification_id: str
    campaign_id: str | None
    appointment_id: str | None
    appointment_reference: str | None
    sent_at: dt.datetime


@dataclass(frozen=True)
class Plan:
    """What to do with one reply.

    ``keyword`` is stored with the message (the intent, or the provider's
    verdict); ``appointment_*`` say which appointment a confirm/cancel is about.
    """

    action: str
    keyword: str | None
    provider_answered: bool = False
    appointment_id: str | None = None
    appointment_reference: str | None = None
    # why a reply that looked like something else became a question
    note: str | None = None
    # REPORT: the tenant's service type the text named (catalogue.plan_for)
    service_code: str | None = None


def decide(reading: keywords.Reading, body: str, context: Context | None,
           provider_intent: str | None = None) -> Plan:
    """The plan for a reply (pure)."""
    if provider_intent is not None:
        action = {keywords.STOP: OPT_OUT, keywords.START: OPT_IN}.get(provider_intent, HELP)
        return Plan(action, provider_intent, provider_answered=True)
    intent = reading.intent
    if intent == keywords.STOP:
        return Plan(OPT_OUT, intent)
    if intent == keywords.START:
        return Plan(OPT_IN, intent)
    if intent == keywords.HELP or not (body or "").strip():
        return Plan(HELP, keywords.HELP)
    if intent in (keywords.CONFIRM, keywords.CANCEL):
        return _appointment(reading, context)
    if intent in _SIMPLE:
        return Plan(_SIMPLE[intent], intent)
    return Plan(QUESTION, None)


def _appointment(reading: keywords.Reading, context: Context | None) -> Plan:
    intent = reading.intent
    if context is None or context.appointment_id is None:
        return Plan(QUESTION, intent, note="no appointment was reminded to this number")
    known = context.appointment_reference
    if reading.reference and known and _same(reading.reference, known) is False:
        return Plan(QUESTION, intent, note=f"reference {reading.reference} is not the "
                                            f"reminded appointment's")
    if intent == keywords.CANCEL and not (reading.numbered or reading.reference):
        return Plan(CANCEL_HOW, intent, appointment_id=context.appointment_id,
                    appointment_reference=known)
    return Plan(CONFIRM if intent == keywords.CONFIRM else CANCEL, intent,
                appointment_id=context.appointment_id,
                appointment_reference=reading.reference or known)


def _same(typed: str, known: str) -> bool:
    def bare(ref: str) -> str:
        return "".join(ch for ch in ref.upper() if ch.isalnum())
    return bare(typed) == bare(known)
