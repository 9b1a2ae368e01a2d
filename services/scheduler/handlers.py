"""Event handlers of the scheduler: small functions, dependencies as parameters.

The map from event type to handlers is in :func:`routes`; the composition root
(``wiring.py``) binds it to the ``scheduler.events`` queue.  Each handler runs
inside the inbox transaction, so a redelivered event changes nothing twice.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.scheduler import appointments
from services.scheduler.models import CampaignStat, Subscriber
from shared import phone, pii
from shared.db import insert_for, utcnow
from shared.events import Event
from shared.inbox import Route, Routes
from shared.tenancy import TENANCY_HANDLERS


def _set_opted_out(event: Event, session: Session, opted_out: bool) -> None:
    data = event.data
    if data.get("channel", "sms") == "sms":
        # already E.164 from inbound or notify; normalised again so a number
        # written another way still finds its subscriber
        # (lookup_hash normalises to E.164)
        match = Subscriber.phone_hash == pii.lookup_hash(session, data["recipient"])
    else:
        try:
            email = phone.normalise_email(data["recipient"])
        except ValueError:
            return   # not an address we could ever have stored
        match = Subscriber.email_hash == pii.lookup_hash(session, email)
    session.execute(sa.update(Subscriber)
                    .where(Subscriber.tenant_id == str(event.tenant_id), match)
                    .values(opted_out=opted_out, updated_at=utcnow()))


def on_opted_out(event: Event, session: Session) -> None:
    """A citizen said STOP (or the team suppressed them): no campaign reaches them again."""
    _set_opted_out(event, session, True)


def on_opted_in(event: Event, session: Session) -> None:
    """A citizen said START: they are back in their campaigns' audiences."""
    _set_opted_out(event, session, False)


def on_language_changed(event: Event, session: Session) -> None:
    """A citizen replied CYMRAEG or ENGLISH: their next reminders come in that language."""
    data = event.data
    column = (Subscriber.phone_hash if data.get("channel", "sms") == "sms"
              else Subscriber.email_hash)
    session.execute(sa.update(Subscriber)
                    .where(Subscriber.tenant_id == str(event.tenant_id),
                           column == pii.lookup_hash(session, data["recipient"]))
                    .values(language=data["language"], updated_at=utcnow()))


def on_notification_outcome(event: Event, session: Session) -> None:
    """Count a campaign notification's new status (sent, delivered, failed...)."""
    on_notification_outcomes([event], session)


def on_notification_outcomes(events: list[Event], session: Session) -> None:
    """The batch form: the batch's counts summed per (campaign, occurrence, status), one
    upsert each — a bin night's 200 outcomes in a batch become a handful of rows."""
    totals: dict[tuple[str, str, str], list] = {}
    for event in events:
        data = event.data
        if not data.get("campaign_id"):
            continue   # an API send or an auto-reply: not ours to count
        key = (str(data["campaign_id"]), data.get("occurrence_key") or "", data["status"])
        totals.setdefault(key, [str(event.tenant_id), 0])[1] += 1
    now = utcnow()
    for (campaign_id, occurrence_key, status), (tenant_id, count) in sorted(totals.items()):
        _add_to_stat(session, tenant_id, campaign_id, occurrence_key, status, count, now)



def on_reply(event: Event, session: Session) -> None:
    """A citizen replied to a campaign's text: counted in the campaign's stats as 'replied'."""
    campaign_id = event.data.get("campaign_id")
    if not campaign_id:
        return
    _add_to_stat(session, str(event.tenant_id), str(campaign_id), "", "replied", 1, utcnow())


def _add_to_stat(session: Session, tenant_id: str, campaign_id: str, occurrence_key: str,
                 status: str, count: int, now: dt.datetime) -> None:
    stmt = insert_for(session, CampaignStat).values(
        campaign_id=campaign_id, occurrence_key=occurrence_key, status=status,
        tenant_id=tenant_id, count=count, updated_at=now)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["campaign_id", "occurrence_key", "status"],
        set_={"count": CampaignStat.count + count, "updated_at": now}))


def routes() -> Routes:
    """{event type: [routes]} — one visible map for the whole service (the queues they
    are bound to: ``shared/topology.py``)."""
    outcome = [Route(on_notification_outcome, many=on_notification_outcomes)]
    return {
        **TENANCY_HANDLERS,
        "subscriber.opted_out": [on_opted_out],
        "subscriber.opted_in": [on_opted_in],
        "subscriber.language_changed": [on_language_changed],
        "inbound.message.received": [on_reply],
        "notification.sent": outcome,
        "notification.delivered": outcome,
        "notification.failed": outcome,
        "notification.suppressed": outcome,
        "notification.deferred": outcome,
        "appointment.cancelled": [appointments.on_cancelled],
        "appointment.confirmed": [appointments.on_confirmed],
        "appointment.rearrange_requested": [appointments.on_rearrange_requested],
    }
