"""The tenant's opt-out list, changed by the team (the API's ``/api/suppressions`` and the
console's subscriber page): one place that stores the change and announces it, so the
scheduler's ``opted_out`` follows whichever way it was made."""
from __future__ import annotations

from sqlalchemy.orm import Session

from services.notify.models import Suppression
from services.notify.sending import find_suppression, new_suppression
from shared import events, outbox
from shared.db import utcnow


def suppress(session: Session, tenant_id: str, channel: str, recipient: str,
             cid: str | None, source: str = "team") -> Suppression:
    """Stop sending to ``recipient`` (normalised); publishes ``subscriber.opted_out`` once."""
    row = find_suppression(session, tenant_id, channel, recipient)
    if row is None:
        row = new_suppression(session, tenant_id, channel, recipient, source=source,
                              created_at=utcnow())
        session.add(row)
        outbox.add(session, events.make("subscriber.opted_out", tenant_id, cid,
                                        recipient=recipient, channel=channel, source=source))
    return row


def unsuppress(session: Session, tenant_id: str, channel: str, recipient: str,
               cid: str | None) -> bool:
    """Send to ``recipient`` again; publishes ``subscriber.opted_in``.  False if not listed."""
    row = find_suppression(session, tenant_id, channel, recipient)
    if row is None:
        return False
    session.delete(row)
    outbox.add(session, events.make("subscriber.opted_in", tenant_id, cid, recipient=recipient,
                                    channel=channel, source="team"))
    return True
