"""Event handlers of the inbound service: small functions, ``(event, session)``.

The map from event type to handlers is in :func:`routes`; the composition root
(``wiring.py``) binds it to the service's queues.  On ``inbound.events`` (tenant
replica, conversation context) each runs inside the inbox transaction, so it
runs once per event id; on ``inbound.webhooks`` the handler only prepares the
signed POST, which is sent outside any transaction (``tenant_webhooks.py``).
"""
from __future__ import annotations

import functools

from sqlalchemy.orm import Session

from services.inbound import conversations, tenant_webhooks
from services.inbound.models import Conversation
from shared import phone, pii
from shared.crypto import SecretBox
from shared.db import insert_for
from shared.events import Event
from shared.inbox import Route, Routes
from shared.tenancy import TENANCY_HANDLERS


def _conversation(event: Event) -> dict | None:
    """The conversation row a ``notification.sent`` makes, or None (not a text)."""
    d = event.data
    if d.get("channel") != "sms" or not d.get("recipient") or event.tenant_id is None:
        return None
    return {
        "tenant_id": str(event.tenant_id),
        "recipient": phone.try_normalise(d["recipient"]) or d["recipient"],
        "notification_id": str(d["notification_id"]),
        "campaign_id": _str_or_none(d.get("campaign_id")),
        "appointment_id": _str_or_none(d.get("appointment_id")),
        # the board's reference and the reply code ("CANSLO 4821") of the appointment reminded
        "appointment_reference": _str_or_none(d.get("appointment_reference")),
        "reply_code": _str_or_none(d.get("reply_code")),
        # the language it went in: a reply is answered in it if nothing better is known
        "language": _str_or_none(d.get("language")),
        "sent_at": event.occurred_at,
    }


def _upsert_conversations(session: Session, rows: list[dict]) -> None:
    """One statement for the lot; an older send never replaces a newer one."""
    if not rows:
        return
    # found by the number's keyed hash; the number itself is encrypted (EncryptedText)
    rows = [{**row, "recipient_hash": pii.lookup_hash(session, row["recipient"])} for row in rows]
    # executemany form: one cached statement, sent by SQLAlchemy as multi-row pages
    stmt = insert_for(session, Conversation.__table__)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["tenant_id", "recipient_hash"],
        set_={name: stmt.excluded[name] for name in
              ("notification_id", "campaign_id", "appointment_id", "appointment_reference",
               "reply_code", "language", "sent_at")},
        where=Conversation.__table__.c.sent_at < stmt.excluded.sent_at), rows)


def remember_last_sent(event: Event, session: Session) -> None:
    """notification.sent: this text is now the one a reply from that citizen answers.

    Only text messages: a reply comes by text, so an email is never its context.
    Events can arrive out of order (a retry, a replay), so an older send never
    replaces a newer one.
    """
    row = _conversation(event)
    if row is not None:
        _upsert_conversations(session, [row])


def remember_many(events: list[Event], session: Session) -> None:
    """The batch form: the newest text per citizen in the batch, in one multi-row upsert
    (a row may appear once per statement, so the batch is reduced to one per citizen)."""
    newest: dict[tuple[str, str], dict] = {}
    for event in events:
        row = _conversation(event)
        if row is None:
            continue
        key = (row["tenant_id"], row["recipient"])
        if key not in newest or newest[key]["sent_at"] < row["sent_at"]:
            newest[key] = row
    rows = [newest[k] for k in sorted(newest)]   # a fixed order: no deadlock between workers
    _upsert_conversations(session, rows)



def _str_or_none(value) -> str | None:
    return str(value) if value else None


def routes(box: SecretBox | None = None) -> Routes:
    """{event type: [routes]} — one visible map for the whole service.

    The service's own events (requests, replies) are bound to ``inbound.webhooks``:
    their handler prepares the signed POST to the tenant's webhook, which
    :class:`~services.inbound.tenant_webhooks.WebhookDispatcher` sends outside
    any transaction.  ``box`` decrypts the tenant's webhook secret.
    """
    prepare = functools.partial(tenant_webhooks.prepare, box=box)
    return {
        **TENANCY_HANDLERS,
        # the context of the next reply; and the staff inbox (h2: conversations.py)
        "notification.sent": [Route(remember_last_sent, many=remember_many),
                              Route(conversations.record_sent, many=conversations.record_sent_many)],
        "service_request.created": [prepare],
        "service_request.updated": [prepare],
        "inbound.message.received": [prepare],
        # the board's system hears what its patients replied
        "appointment.confirmed": [prepare],
        "appointment.cancelled": [prepare],
        "appointment.rearrange_requested": [prepare],
    }
