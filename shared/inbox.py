"""Idempotent consumption: an inbox row per (event, consumer), in the handler's transaction.

:func:`handle_once` claims the event id with ``INSERT ... ON CONFLICT DO
NOTHING`` and runs the handler in the same transaction.  If the row was already
there, the event was processed before (a redelivery or a replay) and nothing
runs.  The broker ack comes after the commit, in :mod:`shared.bus`.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Database, KernelBase, UTCDateTime, insert_for, utcnow
from shared.events import Event
from shared.metrics import METRICS

EventHandler = Callable[[Event, Session], None]


class InboxRow(KernelBase):
    __tablename__ = "inbox"

    event_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    consumer: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(sa.String(64))
    processed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def claim(session: Session, event: Event, consumer: str) -> bool:
    """True if this consumer has not seen ``event`` before (and now has)."""
    values = {"event_id": str(event.id), "consumer": consumer, "event_type": event.type,
              "processed_at": utcnow()}
    stmt = insert_for(session, InboxRow).values(**values).on_conflict_do_nothing()
    return session.execute(stmt).rowcount == 1


def handle_once(db: Database, consumer: str, event: Event, handler: EventHandler) -> bool:
    """Run ``handler(event, session)`` once per event id; False for a duplicate."""
    with db.transaction() as session:
        if not claim(session, event, consumer):
            METRICS.events_duplicate.labels(consumer=consumer).inc()
            return False
        handler(event, session)
    return True


def dispatcher(db: Database, consumer: str, routes: dict[str, list[EventHandler]]):
    """A queue's handler: the event type picks the handlers, all run in one transaction."""
    def handle(event: Event) -> None:
        handlers = routes.get(event.type, [])

        def run_all(ev: Event, session: Session) -> None:
            for h in handlers:
                h(ev, session)
        handle_once(db, consumer, event, run_all)
    return handle
