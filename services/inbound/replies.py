"""Where a reply is kept and where its events leave.

Both webhooks (Twilio, GOV.UK Notify) end in :meth:`Replies.handle`:

1. a provider reference seen before is a retry: nothing more happens;
2. the text is read with the tenant's words and the conversation context; for
   anything but an opt-out or opt-in the scheduler is asked (*outside* any
   transaction, within a timeout) for the language recorded for the number and its
   live appointments, and :func:`services.inbound.routing.decide` says what the
   reply asks for;
3. what else the scheduler must say (the next collection, the address) is asked,
   again outside any transaction;
4. one transaction stores the message once per provider reference with a
   ``HYS-`` reference, makes the service request or language change, and
   leaves every event in the outbox: a reply is kept with all its events or not
   at all.

Opt-outs come first: ``subscriber.opted_out`` is written before anything else,
so the relay publishes it first and notify's suppression list has it before
any answer is asked for.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.inbound import (
    autoreplies,
    catalogue,
    conversations,
    keywords,
    reply_config,
    routing,
    service_requests,
)
from services.inbound.catalogue import MISSED_COLLECTION, QUESTION
from services.inbound.models import Conversation, InboundMessage, LanguagePreference
from services.inbound.scheduler_client import (
    Lookup,
    SchedulerLookups,
    bookings_of,
    next_collection_of,
    recorded_language,
)
from shared import events, outbox, pii
from shared.db import Database, insert_for, utcnow
from shared.tenancy import Tenant

log = logging.getLogger(__name__)

# Twilio's Advanced Opt-Out reports what it did with the message in OptOutType.
PROVIDER_OPT_OUT_TYPES = {"STOP": keywords.STOP, "START": keywords.START, "HELP": keywords.HELP}
SUBSCRIPTION_EVENTS = {routing.OPT_OUT: "subscriber.opted_out",
                       routing.OPT_IN: "subscriber.opted_in"}
# Not in the kernel's event list yet: published as soon as the kernel knows it.
LANGUAGE_EVENT = "subscriber.language_changed"
# The subscriber attributes a missed-collection request carries (others stay with the scheduler).
ADDRESS_ATTRIBUTES = ("uprn", "address", "postcode", "round", "lat", "long")


@dataclass(frozen=True)
class Incoming:
    """A text as a provider delivered it; numbers already E.164."""

    provider: str
    reference: str
    from_number: str
    to_number: str
    body: str
    opt_out_type: str | None = None
    received_at: dt.datetime | None = None


@dataclass(frozen=True)
class Receipt:
    """A reply that was new, and what was made of it."""

    message_id: str
    reference: str
    action: str
    keyword: str | None
    reading: keywords.Reading
    provider_answered: bool
    inline_answer: str | None
    request_reference: str | None = None


@dataclass(frozen=True)
class Facts:
    """What the scheduler said, asked before the transaction."""

    collection: Lookup | None = None
    subscriber: Lookup | None = None
    # the language recorded for the number, and its live appointments
    citizen: Lookup | None = None


def read_keyword(body: str, opt_out_type: str | None, words: keywords.Vocabulary
                 ) -> tuple[keywords.Reading, str | None]:
    """(reading of the text, the provider's own verdict if it acted on the message).

    When the provider says it treated the message as an opt-out (or opt-in), that
    wins over our reading of the text: it has blocked (or unblocked) the number
    already, and the platform must not disagree with it.
    """
    reading = keywords.parse(body, words)
    return reading, PROVIDER_OPT_OUT_TYPES.get((opt_out_type or "").strip().upper())


@dataclass
class Replies:
    """Receives replies for one service: its database and its scheduler client."""

    db: Database
    lookups: SchedulerLookups
    # the tenants' keywords, wording and service types, checked by one query a reply
    configs: reply_config.ReplyConfigs = field(default_factory=reply_config.ReplyConfigs)

    def handle(self, tenant: Tenant, incoming: Incoming, cid: str | None = None
               ) -> Receipt | None:
        """Receive one reply; None when it was received before (a provider retry)."""
        with self.db.read() as session:
            # one query: a provider retry, and whether the tenant's configuration changed
            seen, config = self.configs.check(session, tenant.id, incoming.provider,
                                              incoming.reference)
            if seen or config is None:
                return None
            context = conversation(session, tenant.id, incoming.from_number)
            preference = language_preference(session, tenant.id, incoming.from_number)
        reading, provider_intent = read_keyword(incoming.body, incoming.opt_out_type,
                                                config.words)
        citizen = None
        if provider_intent is None and reading.intent not in (keywords.STOP, keywords.START):
            # opt-outs and opt-ins wait for nobody: they are answered from what inbound knows
            citizen = self.lookups.citizen(tenant.id, incoming.from_number)
        plan = routing.decide(reading, incoming.body, context, provider_intent,
                              bookings_of(citizen))
        # the tenant's own service types, by their keywords (catalogue.py)
        plan = catalogue.plan_for(plan, incoming.body, config.service_types)
        facts = self.look_up(plan, tenant.id, incoming.from_number, citizen)
        language = answer_language(plan, reading, context, preference, facts)
        with self.db.transaction() as session:
            return record(session, tenant, incoming, reading, plan, facts, language,
                          config.wording, cid, config.service_types, context=context)

    def look_up(self, plan: routing.Plan, tenant_id: str, phone: str,
                citizen: Lookup | None = None) -> Facts:
        if plan.action == routing.WHEN:
            return Facts(collection=self.lookups.next_collection(tenant_id, phone),
                         citizen=citizen)
        if plan.action == routing.MISSED:
            return Facts(subscriber=self.lookups.subscriber(tenant_id, phone), citizen=citizen)
        return Facts(citizen=citizen)


def answer_language(plan: routing.Plan, reading: keywords.Reading,
                    context: routing.Context | None, preference: str | None,
                    facts: Facts) -> str | None:
    """The language every text this reply causes is written in ("cy", "en", None: both).

    Recorded first: the citizen's own choice by text, else the language of the
    appointment the reply names, else what the scheduler holds for the number.
    """
    if plan.action in (routing.LANGUAGE_CY, routing.LANGUAGE_EN):
        return "cy" if plan.action == routing.LANGUAGE_CY else "en"
    recorded = (preference or (plan.appointment.language if plan.appointment else None)
                or recorded_language(facts.citizen))
    return autoreplies.choose_language(recorded, context.language if context else None,
                                       reading.language)


def conversation(session: Session, tenant_id: str, phone: str) -> routing.Context | None:
    row = find_conversation(session, tenant_id, phone)
    if row is None:
        return None
    return routing.Context(row.notification_id, row.campaign_id, row.appointment_id,
                           row.appointment_reference, row.sent_at, row.reply_code,
                           row.language if row.language in autoreplies.LANGUAGES else None)


def find_conversation(session: Session, tenant_id: str, phone: str) -> Conversation | None:
    """The last text sent to ``phone`` from this tenant (found by the number's keyed hash)."""
    return session.get(Conversation, (tenant_id, pii.lookup_hash(session, phone)))


def language_preference(session: Session, tenant_id: str, phone: str) -> str | None:
    """The language a citizen chose by text (found by the number's keyed hash)."""
    row = session.get(LanguagePreference, (tenant_id, pii.lookup_hash(session, phone)))
    return row.language if row else None


@dataclass
class _Reply:
    """One reply being recorded: what has been decided so far."""

    tenant: Tenant
    incoming: Incoming
    message_id: str
    reference: str
    language: str | None
    cid: str | None
    action: str
    out: list[events.Event]
    wording: autoreplies.Wording = autoreplies.PLATFORM
    service_types: Mapping[str, catalogue.ServiceType] | None = None
    answer: dict[str, str] | None = None
    request_reference: str | None = None

    def compose(self, kind: str, reference: str | None = None, **values) -> dict[str, str]:
        return autoreplies.compose(kind, self.tenant.name, reference or self.reference,
                                   self.wording, **values)


def record(session: Session, tenant: Tenant, incoming: Incoming, reading: keywords.Reading,
           plan: routing.Plan, facts: Facts, language: str | None,
           wording: autoreplies.Wording = autoreplies.PLATFORM,
           cid: str | None = None,
           service_types: Mapping[str, catalogue.ServiceType] | None = None,
           *, context: routing.Context | None) -> Receipt | None:
    """Store the reply once and leave all its events in the outbox (the caller commits).
    ``service_types`` (else read again) and ``context``, the last text sent to the
    number: as the reply was routed by."""
    message_id = str(uuid.uuid4())
    received_at = incoming.received_at or utcnow()
    # the reference first, so the message is stored with it (a retry, which stores
    # nothing, leaves one reference unused: references are never handed out twice)
    reference = service_requests.allocate_reference(session, tenant.id)
    if not _store_once(session, id=message_id, tenant_id=tenant.id, provider=incoming.provider,
                       provider_reference=incoming.reference, from_number=incoming.from_number,
                       to_number=incoming.to_number, body=incoming.body, keyword=plan.keyword,
                       received_at=received_at, reference=reference, action=plan.action):
        return None
    reply = _Reply(tenant, incoming, message_id, reference, language, cid, plan.action, [],
                   wording, service_types)
    if plan.action in SUBSCRIPTION_EVENTS:
        reply.out.append(events.make(SUBSCRIPTION_EVENTS[plan.action], tenant.id, cid,
                                     recipient=incoming.from_number, channel="sms",
                                     source="reply"))
    reply.out.append(events.make(
        "inbound.message.received", tenant.id, cid, message_id=message_id,
        provider_reference=incoming.reference, from_number=incoming.from_number,
        to_number=incoming.to_number, body=incoming.body, received_at=received_at,
        keyword=plan.keyword, campaign_id=context.campaign_id if context else None))
    # first in the outbox, so first on the bus: the opt-out before anything it causes
    outbox.add(session, *reply.out)
    reply.out.clear()
    ACTIONS[plan.action](session, reply, plan, facts, incoming.provider)
    if reply.action != plan.action:     # the action found it could not do what was asked
        session.execute(sa.update(InboundMessage).where(InboundMessage.id == message_id)
                        .values(action=reply.action))
    _ask_notify(reply)
    outbox.add(session, *reply.out)
    inline = autoreplies.inline_answer(tenant, incoming.provider, plan.keyword, reading,
                                       plan.provider_answered, language, wording)
    # the staff inbox (conversations.py): the reply and its answers; a question opens it
    conversations.record_reply(
        session, tenant, message_id=message_id, phone=incoming.from_number, body=incoming.body,
        keyword=plan.keyword, action=reply.action, reference=reference, language=reply.language,
        received_at=received_at, context=context, service_request=reply.request_reference,
        answers=[e for e in reply.out if e.type == "notification.requested"],
        service_code=plan.service_code, inline_answer=inline,
        appointment_id=plan.appointment_id, appointment_reference=plan.appointment_reference)
    return Receipt(message_id=message_id, reference=reference, action=reply.action,
                   keyword=plan.keyword, reading=reading,
                   provider_answered=plan.provider_answered,
                   inline_answer=inline,
                   request_reference=reply.request_reference)


def _store_once(session: Session, **row) -> bool:
    # ON CONFLICT DO NOTHING rather than look-then-insert: two deliveries of the
    # same message racing each other still store it exactly once.
    stmt = insert_for(session, InboundMessage).values(**row).on_conflict_do_nothing()
    return session.execute(stmt).rowcount == 1


def _ask_notify(reply: _Reply) -> None:
    if reply.answer is None:
        return
    event = autoreplies.reply_requested(
        reply.tenant, reply.incoming.from_number, reply.answer, reply.language,
        reply.request_reference or reply.reference, key=f"{reply.message_id}:reply",
        cid=reply.cid)
    if event is None:
        log.error("tenant %s has no reply_template_id: the answer to a reply is not sent",
                  reply.tenant.slug)
        return
    reply.out.append(event)


# -- what each action does ------------------------------------------------------

def _nothing(session, reply: _Reply, plan, facts, provider) -> None:
    """Opt-out and opt-in: the subscription event is all (confirmed inline, or by Twilio)."""


def _help(session, reply: _Reply, plan, facts, provider: str) -> None:
    # Twilio's help is answered inline (TwiML); GOV.UK Notify has no inline road.
    if provider != "twilio":
        reply.answer = reply.compose(keywords.HELP)


def _question(session, reply: _Reply, plan, facts, provider, *, kind: str | None = None,
              **values) -> None:
    """For the team: a question, or a reply the platform could not act on."""
    request = _request(session, reply, QUESTION, description=reply.incoming.body,
                       attributes={"note": plan.note} if plan.note else {})
    reply.action = routing.QUESTION
    reply.answer = reply.compose(kind or plan.answer or "question", request.reference,
                                 **values)


def _unrecognised(session, reply: _Reply, plan: routing.Plan, facts, provider) -> None:
    """A code that is none of this number's appointments: nothing changes; the citizen
    is told so (and how to reach the team), and it is recorded as every reply the
    platform could not act on is, a ``question`` for the team: the same road, so it
    reaches the staff inbox as any question does (the request's note says why)."""
    _question(session, reply, plan, facts, provider, kind="unknown_code", code=plan.code)


def _missed(session, reply: _Reply, plan, facts: Facts, provider) -> None:
    found = facts.subscriber.data.get("attributes", {}) if (
        facts.subscriber and facts.subscriber.found) else {}
    attributes = {k: found[k] for k in ADDRESS_ATTRIBUTES if found.get(k) not in (None, "")}
    if not found:
        attributes["lookup"] = facts.subscriber.outcome if facts.subscriber else "not asked"
    request = _request(session, reply, MISSED_COLLECTION, description=reply.incoming.body,
                       address=_text(attributes.get("address")),
                       address_id=_text(attributes.get("uprn")),
                       zipcode=_text(attributes.get("postcode")),
                       lat=_number(attributes.get("lat")), long=_number(attributes.get("long")),
                       attributes=attributes)
    where = f" ({request.address})" if request.address else ""
    reply.answer = reply.compose("missed", request.reference, where=where)


def _when(session, reply: _Reply, plan, facts: Facts, provider) -> None:
    lookup = facts.collection
    if lookup is None or not lookup.found:
        plan = routing.Plan(routing.QUESTION, plan.keyword,
                            note=f"next collection lookup: {lookup.outcome if lookup else '-'}")
        _question(session, reply, plan, facts, provider, kind="when_unavailable")
        return
    collection = next_collection_of(lookup)
    if collection is None:
        reply.answer = reply.compose("when_none")
        return
    what = {lang: f" ({text})" for lang, text in collection.description.items() if text}
    dates = {lang: autoreplies.long_date(collection.date, lang) for lang in ("cy", "en")}
    reply.answer = reply.compose("when", what=what, date=dates)


APPOINTMENT_EVENTS = {routing.CONFIRM: "appointment.confirmed",
                      routing.CANCEL: "appointment.cancelled",
                      routing.REARRANGE: "appointment.rearrange_requested"}


def _appointment(session, reply: _Reply, plan: routing.Plan, facts, provider) -> None:
    """The appointment the reply names: the scheduler and the board's system hear it."""
    booking = plan.appointment
    reply.out.append(events.make(APPOINTMENT_EVENTS[plan.action], reply.tenant.id, reply.cid,
                                 appointment_id=booking.id,
                                 external_reference=booking.external_reference,
                                 reply_code=booking.reply_code,
                                 recipient=reply.incoming.from_number, source="reply",
                                 message_id=reply.message_id, reference=reply.reference))
    reply.answer = reply.compose(plan.action, day=autoreplies.appointment_day(booking.starts_at))


def _cancel_how(session, reply: _Reply, plan: routing.Plan, facts, provider) -> None:
    reply.answer = reply.compose(routing.CANCEL_HOW,
                                 code=plan.code or autoreplies.EXAMPLE_CODE)


def _language(session, reply: _Reply, plan: routing.Plan, facts, provider) -> None:
    phone = reply.incoming.from_number
    stmt = insert_for(session, LanguagePreference).values(
        tenant_id=reply.tenant.id, phone=phone, phone_hash=pii.lookup_hash(session, phone),
        language=reply.language, source="reply", message_id=reply.message_id,
        updated_at=utcnow())
    session.execute(stmt.on_conflict_do_update(
        index_elements=["tenant_id", "phone_hash"],
        set_={k: stmt.excluded[k] for k in ("language", "source", "message_id", "updated_at")}))
    reply.out.append(events.make(LANGUAGE_EVENT, reply.tenant.id, reply.cid,
                                 recipient=phone, channel="sms", language=reply.language,
                                 source="reply"))
    reply.answer = reply.compose(plan.action)


def _report(session, reply: _Reply, plan: routing.Plan, facts, provider) -> None:
    """A request of one of the tenant's own service types (h2: catalogue.plan_for)."""
    request = _request(session, reply, plan.service_code, description=reply.incoming.body)
    types = reply.service_types or catalogue.for_tenant(session, reply.tenant.id)
    service = types[plan.service_code]
    reply.answer = catalogue.logged_answer(reply.tenant.name, request.reference, service)


def _request(session, reply: _Reply, service_code: str, **fields):
    request = service_requests.create(
        session, reply.tenant.id, service_code=service_code, source="sms",
        changed_by="citizen", cid=reply.cid, reference=reply.reference,
        phone=reply.incoming.from_number, language=reply.language,
        message_id=reply.message_id, service_types=reply.service_types, **fields)
    reply.request_reference = request.reference
    return request


def _text(value) -> str | None:
    return str(value)[:500] if value not in (None, "") else None


def _number(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


ACTIONS = {
    routing.OPT_OUT: _nothing, routing.OPT_IN: _nothing, routing.HELP: _help,
    routing.QUESTION: _question, routing.MISSED: _missed, routing.WHEN: _when,
    routing.CONFIRM: _appointment, routing.CANCEL: _appointment,
    routing.REARRANGE: _appointment, routing.UNRECOGNISED: _unrecognised,
    routing.CANCEL_HOW: _cancel_how, routing.LANGUAGE_CY: _language,
    routing.LANGUAGE_EN: _language, routing.REPORT: _report,
}
