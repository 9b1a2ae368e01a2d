"""Where a reply is kept and where its events leave.

Both webhooks (Twilio, GOV.UK Notify) end in :func:`receive`: the message is
stored once per provider reference, its keyword is read, and the events it
causes go to the outbox in the caller's transaction, so a reply is either
stored with all its events or not at all.

Opt-outs come first: ``subscriber.opted_out`` is written before
``inbound.message.received``, so the relay publishes it first and notify's
suppression list has it before anything else about that reply.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from services.inbound import keywords
from services.inbound.models import InboundMessage
from shared import events, outbox
from shared.db import insert_for, utcnow
from shared.tenancy import Tenant

# Twilio's Advanced Opt-Out reports what it did with the message in OptOutType.
PROVIDER_OPT_OUT_TYPES = {"STOP": keywords.STOP, "START": keywords.START, "HELP": keywords.HELP}
SUBSCRIPTION_EVENTS = {keywords.STOP: "subscriber.opted_out",
                       keywords.START: "subscriber.opted_in"}


@dataclass(frozen=True)
class Receipt:
    """A reply that was new, and what was made of it."""

    message_id: str
    tenant_id: str
    provider: str
    from_number: str
    keyword: str | None
    reading: keywords.Reading
    # The provider has already acted on the message and answered the citizen.
    provider_answered: bool
    event_types: tuple[str, ...]


def read_keyword(body: str, opt_out_type: str | None) -> tuple[keywords.Reading, str | None, bool]:
    """(reading of the text, keyword, whether the provider acted on it).

    When the provider says it treated the message as an opt-out (or opt-in), that
    wins over our reading of the text: it has blocked (or unblocked) the number
    already, and the platform must not disagree with it.
    """
    reading = keywords.parse(body)
    provider_intent = PROVIDER_OPT_OUT_TYPES.get((opt_out_type or "").strip().upper())
    if provider_intent is not None:
        return reading, provider_intent, True
    return reading, reading.intent, False


def receive(session: Session, tenant: Tenant, provider: str, reference: str, from_number: str,
            to_number: str, body: str, opt_out_type: str | None = None, cid: str | None = None,
            *, received_at: dt.datetime | None = None) -> Receipt | None:
    """Store a reply once and leave its events in the outbox (the caller commits).

    ``from_number`` and ``to_number`` are E.164.  Answers None, and does
    nothing, when this provider reference was received before (a webhook retry).
    """
    reading, keyword, provider_answered = read_keyword(body, opt_out_type)
    message_id = str(uuid.uuid4())
    received_at = received_at or utcnow()
    if not _store_once(session, id=message_id, tenant_id=tenant.id, provider=provider,
                       provider_reference=reference, from_number=from_number,
                       to_number=to_number, body=body, keyword=keyword, received_at=received_at):
        return None
    out: list[events.Event] = []
    subscription = SUBSCRIPTION_EVENTS.get(keyword or "")
    if subscription:
        out.append(events.make(subscription, tenant.id, cid, recipient=from_number,
                               channel="sms", source="reply"))
    out.append(events.make(
        "inbound.message.received", tenant.id, cid, message_id=message_id,
        provider_reference=reference, from_number=from_number, to_number=to_number,
        body=body, received_at=received_at, keyword=keyword))
    outbox.add(session, *out)
    return Receipt(message_id=message_id, tenant_id=tenant.id, provider=provider,
                   from_number=from_number, keyword=keyword, reading=reading,
                   provider_answered=provider_answered,
                   event_types=tuple(e.type for e in out))


def _store_once(session: Session, **row) -> bool:
    # ON CONFLICT DO NOTHING rather than look-then-insert: two deliveries of the
    # same message racing each other still store it exactly once.
    stmt = insert_for(session, InboundMessage).values(**row).on_conflict_do_nothing()
    return session.execute(stmt).rowcount == 1
