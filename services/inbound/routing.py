"""What a reply leads to: the conversation rules.

:func:`decide` is pure: the reading of the text, the conversation context (the
last text sent to this citizen by this tenant), what the provider already did
and, for an appointment reply, this number's live appointments with this tenant
(asked of the scheduler) give one :class:`Plan`.  The rules, in order:

1. The provider's own opt-out verdict (Twilio's ``OptOutType``), then STOP/START
   words: opt-out and opt-in come before anything else.
2. HELP.  An empty text is answered with the help text too.
3. Appointment replies.  One that names a code (``CANSLO 4821``, ``CONFIRM
   A-1001``, ``AILDREFNU 4821``) acts on the live appointment of this number
   with this tenant whose reply code or reference it is, whichever appointment
   was reminded last; a code that is none of them cancels nothing and goes to
   the team (:data:`UNRECOGNISED`).  ``1`` and ``2`` (and a bare CONFIRM or
   AILDREFNU) answer the reminder they reply to: its appointment, if it is still
   live.  A bare cancel word (``CANSLO``) never cancels: it is answered with how
   to cancel; a bare ``CANCEL`` never gets here (it is an opt-out).
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
CONFIRM, CANCEL, REARRANGE, CANCEL_HOW = "confirm", "cancel", "rearrange", "cancel_how"
# a reply the platform could not act on (a code that is none of this number's
# appointments): nothing changes, the citizen is told, and it goes to the team
UNRECOGNISED = "unrecognised"
LANGUAGE_CY, LANGUAGE_EN = "language_cy", "language_en"
# a request of one of the tenant's own service types, by its keywords (catalogue.plan_for)
REPORT = "report"

APPOINTMENT_INTENTS = (keywords.CONFIRM, keywords.CANCEL, keywords.REARRANGE)
_ACTION_FOR = {keywords.CONFIRM: CONFIRM, keywords.CANCEL: CANCEL,
               keywords.REARRANGE: REARRANGE}
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
    reply_code: str | None = None
    # the language that text went in: "cy", "en", or None (bilingual, or not known)
    language: str | None = None


@dataclass(frozen=True)
class Booking:
    """One live appointment of the citizen's, as the scheduler knows it."""

    id: str
    external_reference: str
    reply_code: str | None = None
    starts_at: dt.datetime | None = None
    language: str | None = None


@dataclass(frozen=True)
class Plan:
    """What to do with one reply.

    ``keyword`` is stored with the message (the intent, or the provider's
    verdict); ``appointment`` is the appointment a confirm/cancel/rearrange acts
    on; ``code`` the code the citizen typed; ``answer`` the auto-reply's kind when
    it is not the action's own.
    """

    action: str
    keyword: str | None
    provider_answered: bool = False
    appointment: Booking | None = None
    code: str | None = None
    answer: str | None = None
    # why a reply that looked like something else became a question
    note: str | None = None
    # REPORT: the tenant's service type the text named (catalogue.plan_for)
    service_code: str | None = None

    @property
    def appointment_id(self) -> str | None:
        return self.appointment.id if self.appointment else None

    @property
    def appointment_reference(self) -> str | None:
        return self.appointment.external_reference if self.appointment else None


def decide(reading: keywords.Reading, body: str, context: Context | None,
           provider_intent: str | None = None,
           booked: list[Booking] | None = None) -> Plan:
    """The plan for a reply (pure).  ``booked`` None: the appointments are not known."""
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
    if intent in APPOINTMENT_INTENTS:
        return _appointment(reading, context, booked)
    if intent in _SIMPLE:
        return Plan(_SIMPLE[intent], intent)
    return Plan(QUESTION, None)


def _appointment(reading: keywords.Reading, context: Context | None,
                 booked: list[Booking] | None) -> Plan:
    intent = reading.intent
    unavailable = Plan(QUESTION, intent, answer="appointment_unavailable",
                       note="appointments lookup: unavailable")
    if reading.reference:
        if booked is None:
            return unavailable
        named = named_by(reading.reference, booked)
        if named is None:
            return Plan(UNRECOGNISED, intent, code=reading.reference, answer="unknown_code",
                        note=f"code {reading.reference} is none of this number's appointments")
        return Plan(_ACTION_FOR[intent], intent, appointment=named, code=reading.reference)
    reminded = None
    if context is not None and context.appointment_id and booked is not None:
        reminded = next((b for b in booked if b.id == context.appointment_id), None)
    if intent == keywords.CANCEL:
        # CANSLO alone: cancelling must name the appointment; say how, change nothing
        code = reminded.reply_code if reminded else (context.reply_code if context else None)
        return Plan(CANCEL_HOW, intent, code=code)
    if context is None or context.appointment_id is None:
        return Plan(QUESTION, intent, note="no appointment was reminded to this number")
    if booked is None:
        return unavailable
    if reminded is None:
        return Plan(QUESTION, intent, note="the appointment reminded is no longer booked")
    return Plan(_ACTION_FOR[intent], intent, appointment=reminded)


def named_by(code: str, booked: list[Booking]) -> Booking | None:
    """The one appointment whose reply code (else board reference) ``code`` is."""
    for attribute in ("reply_code", "external_reference"):
        found = [b for b in booked if getattr(b, attribute)
                 and _same(code, getattr(b, attribute))]
        if len(found) == 1:
            return found[0]
        if found:
            return None   # two appointments answer to it: ask a person, never guess
    return None


def _same(typed: str, known: str) -> bool:
    def bare(ref: str) -> str:
        return "".join(ch for ch in ref.upper() if ch.isalnum())
    return bare(typed) == bare(known)
