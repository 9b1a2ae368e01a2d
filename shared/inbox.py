"""Idempotent consumption: an inbox row per (event, consumer), in the handler's transaction.

:func:`handle_once` claims the event id with ``INSERT ... ON CONFLICT DO
NOTHING`` and runs the handler in the same transaction.  If the row was already
there, the event was processed before (a redelivery or a replay) and nothing
runs.  The broker ack comes after the commit, in :mod:`shared.bus`.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared import topology, tracing
from shared.db import Database, KernelBase, UTCDateTime, insert_for, utcnow
from shared.events import Event
from shared.metrics import METRICS
from shared.retention import every

log = logging.getLogger(__name__)
EventHandler = Callable[[Event, Session], None]

# An event id is remembered for as long as the event can come again: the longest road
# back is a replay from its dead-letter queue, whose messages expire after
# DLQ_TTL_DAYS; one day more for margin.  Older rows are deleted (every worker, hourly):
# a bin night adds five rows per notification, and an inbox kept forever would fill
# the disk and slow every claim as its index outgrows memory.
KEEP = dt.timedelta(days=topology.DLQ_TTL_DAYS + 1)
CLEANUP_BATCH = 10_000
CLEANUP_INTERVAL = 3600.0   # seconds


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


def claim_many(session: Session, events: list[Event], consumer: str) -> set[str]:
    """Claim a batch; returns the ids of the events this consumer had not seen."""
    if not events:
        return set()
    now = utcnow()
    rows = [{"event_id": str(e.id), "consumer": consumer, "event_type": e.type,
             "processed_at": now} for e in events]
    # executemany form (SQLAlchemy's "insertmanyvalues"): one compiled, cached statement
    # sent in pages with RETURNING, instead of compiling a 200-row VALUES every batch
    stmt = (insert_for(session, InboxRow.__table__).on_conflict_do_nothing()
            .returning(InboxRow.event_id))
    return set(session.execute(stmt, rows).scalars().all())


class _Dispatcher:
    """A queue's handler: the event type picks the handlers, all in one transaction.

    Called with one event, or (``.batch``) with many in a single transaction —
    the per-event handlers are the same either way.
    """

    def __init__(self, db: Database, consumer: str, routes: dict[str, list[EventHandler]]):
        self.db = db
        self.consumer = consumer
        self.routes = routes

    def _run(self, event: Event, session: Session) -> None:
        for handler in self.routes.get(event.type, []):
            handler(event, session)

    def __call__(self, event: Event) -> None:
        with tracing.consumer_span(event, self.consumer):
            handle_once(self.db, self.consumer, event, self._run)

    def batch(self, events: list[Event]) -> None:
        """Many events in one transaction.  A handler with a ``many`` attribute gets all
        the batch's events of its type at once (one query for the lot, not one each)."""
        with tracing.batch_span(events, self.consumer), self.db.transaction() as session:
            events = self._worth_claiming(events, session)
            fresh = claim_many(session, events, self.consumer)
            duplicates = len(events) - len(fresh)
            if duplicates:
                METRICS.events_duplicate.labels(consumer=self.consumer).inc(duplicates)
            by_type: dict[str, list[Event]] = {}
            for event in events:
                if str(event.id) in fresh:
                    fresh.discard(str(event.id))   # a batch may hold one event twice
                    by_type.setdefault(event.type, []).append(event)
            for event_type, same in by_type.items():
                for handler in self.routes.get(event_type, []):
                    many = getattr(handler, "many", None)
                    if many is not None:
                        many(same, session)
                    else:
                        for event in same:
                            handler(event, session)


    def _worth_claiming(self, events: list[Event], session: Session) -> list[Event]:
        """The batch without events every handler of their type would ignore.

        A handler may say, with a ``relevant(events, session) -> set of event ids``
        attribute, which events it would act on; where every handler of a type says so,
        the others are neither claimed nor handled (handling them would do nothing, so
        running them twice could not matter).  Notify's delivery-status callbacks see
        every outcome of a bin night, but only a few tenants have a callback URL: this
        saves an inbox row per event for the rest.
        """
        by_type: dict[str, list[Event]] = {}
        for event in events:
            by_type.setdefault(event.type, []).append(event)
        kept: list[Event] = []
        for event_type, same in by_type.items():
            handlers = self.routes.get(event_type, [])
            filters = [getattr(h, "relevant", None) for h in handlers]
            if not handlers or any(f is None for f in filters):
                kept.extend(same)
                continue
            wanted: set[str] = set()
            for relevant in filters:
                wanted |= relevant(same, session)
            kept.extend(e for e in same if str(e.id) in wanted)
        return kept


def dispatcher(db: Database, consumer: str, routes: dict[str, list[EventHandler]]) -> _Dispatcher:
    return _Dispatcher(db, consumer, routes)


def queue_dispatchers(db: Database, service: str, routes: dict[str, list[EventHandler]]
                      ) -> dict[str, _Dispatcher]:
    """One dispatcher per queue of ``service`` (topology), each given the handlers of the
    event types bound to it; the queue's name is its inbox consumer name."""
    from shared import topology

    return {spec.name: dispatcher(db, spec.name, {t: routes[t] for t in spec.event_types})
            for spec in topology.queues_for(service)}


def cleanup(db: Database, *, keep: dt.timedelta = KEEP, now: dt.datetime | None = None,
            batch: int = CLEANUP_BATCH) -> int:
    """Forget event ids older than ``keep``, ``batch`` rows a transaction (a short lock
    each, never one statement holding a night's rows); answers how many went."""
    before = (now or utcnow()) - keep
    deleted = 0
    while True:
        with db.transaction() as session:
            due = (sa.select(InboxRow.event_id, InboxRow.consumer)
                   .where(InboxRow.processed_at < before).limit(batch))
            count = session.execute(sa.delete(InboxRow).where(
                sa.tuple_(InboxRow.event_id, InboxRow.consumer).in_(due))).rowcount or 0
        deleted += count
        if count < batch:
            return deleted


def cleanup_loop(db: Database, interval: float = CLEANUP_INTERVAL
                 ) -> Callable[[threading.Event], None]:
    """The background loop every worker runs beside its consumers."""
    def forget() -> None:
        gone = cleanup(db)
        if gone:
            log.info("inbox: forgot %d event ids older than %d days", gone, KEEP.days)
    return every(interval, forget, "inbox_cleanup")
