"""Event handlers of the notify service: small functions, dependencies as parameters.

The map from event type to handlers is in :func:`routes`; the composition root
(``wiring.py``) binds it to queues.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify import opendata
from services.notify.models import Notification, ReceivedText, Suppression
from services.notify.sending import SendRequest, accept
from shared.bus import PermanentError
from shared.db import utcnow
from shared.errors import ValidationError
from shared.events import Event
from shared.tenancy import Tenant


def on_notification_requested(event: Event, session: Session) -> None:
    """Store a notification asked for by the scheduler or inbound; the dispatcher sends it."""
    d = event.data
    nid = str(d["notification_id"])
    if session.get(Notification, nid) is not None:
        return   # asked for before (a replayed occurrence): nothing is sent twice
    tenant = session.get(Tenant, str(event.tenant_id))
    if tenant is None:
        raise PermanentError(f"unknown tenant {event.tenant_id}")
    req = SendRequest(
        channel=d["channel"], template_id=str(d["template_id"]), recipient=d["recipient"],
        personalisation=d.get("personalisation") or {}, reference=d.get("reference"),
        language=d.get("language"), key_type="live", notification_id=nid,
        urgent=d.get("urgent", False),
        campaign_id=str(d["campaign_id"]) if d.get("campaign_id") else None,
        occurrence_key=d.get("occurrence_key"),
        appointment_id=str(d["appointment_id"]) if d.get("appointment_id") else None,
        not_before=d.get("not_before"), sender=d.get("sender"))
    try:
        accept(session, tenant, req, correlation_id=event.correlation_id)
    except ValidationError as exc:
        raise PermanentError(exc.message) from exc


def on_opted_out(event: Event, session: Session) -> None:
    key = (str(event.tenant_id), event.data.get("channel", "sms"), event.data["recipient"])
    if session.get(Suppression, key) is None:
        session.add(Suppression(tenant_id=key[0], channel=key[1], recipient=key[2],
                                source=event.data.get("source", "reply"), created_at=utcnow()))


def on_opted_in(event: Event, session: Session) -> None:
    session.execute(sa.delete(Suppression).where(
        Suppression.tenant_id == str(event.tenant_id),
        Suppression.channel == event.data.get("channel", "sms"),
        Suppression.recipient == event.data["recipient"]))


def on_inbound_message(event: Event, session: Session) -> None:
    d = event.data
    if session.get(ReceivedText, str(d["message_id"])) is None:
        session.add(ReceivedText(id=str(d["message_id"]), tenant_id=str(event.tenant_id),
                                 user_number=d["from_number"], notify_number=d["to_number"],
                                 content=d["body"], created_at=d["received_at"]))


def routes(box=None, http=None) -> dict[str, list]:
    """{event type: [handlers]} — one visible map for the whole service.

    ``box`` and ``http`` are the delivery-status callbacks' dependencies.
    """
    import functools

    import requests

    from services.notify.status_callbacks import post_status_callback

    callback = functools.partial(post_status_callback, http=http or requests.Session(), box=box)
    outcomes = {t: [callback] for t in ("notification.sent", "notification.delivered",
                                        "notification.failed", "notification.suppressed",
                                        "notification.deferred")}
    return {
        **outcomes,
        "notification.requested": [on_notification_requested],
        "subscriber.opted_out": [on_opted_out],
        "subscriber.opted_in": [on_opted_in],
        "inbound.message.received": [on_inbound_message, opendata.count_reply],
        "service_request.created": [opendata.count_service_request],
    }
