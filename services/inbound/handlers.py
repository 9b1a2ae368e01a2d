"""Event handlers of the inbound service: small functions, ``(event, session)``.

The map from event type to handlers is in :func:`routes`; the composition root
(``wiring.py``) binds it to the ``inbound.events`` queue.  Each runs inside the
inbox transaction, so it runs once per event id.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from services.inbound.models import Conversation
from shared import phone
from shared.db import insert_for
from shared.events import Event
from shared.tenancy import TENANCY_HANDLERS


def remember_last_sent(event: Event, session: Session) -> None:
    """notification.sent: this text is now the one a reply from that citizen answers.

    Only text messages: a reply comes by text, so an email is never its context.
    Events can arrive out of order (a retry, a replay), so an older send never
    replaces a newer one.
    """
    d = event.data
    if d.get("channel") != "sms" or not d.get("recipient") or event.tenant_id is None:
        return
    values = {
        "tenant_id": str(event.tenant_id),
        "recipient": phone.try_normalise(d["recipient"]) or d["recipient"],
        "notification_id": str(d["notification_id"]),
        "campaign_id": _str_or_none(d.get("campaign_id")),
        "appointment_id": _str_or_none(d.get("appointment_id")),
        "sent_at": event.occurred_at,
    }
    stmt = insert_for(session, Conversation).values(**values)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["tenant_id", "recipient"],
        set_={name: stmt.excluded[name] for name in
              ("notification_id", "campaign_id", "appointment_id", "sent_at")},
        where=Conversation.sent_at < stmt.excluded.sent_at))


def _str_or_none(value) -> str | None:
    return str(value) if value else None


def routes() -> dict[str, list]:
    """{event type: [handlers]} — one visible map for the whole service."""
    return {
        **TENANCY_HANDLERS,
        "notification.sent": [remember_last_sent],
    }
