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
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared import topology, tracing
from shared.db import Database, KernelBase, UTCDateTime, insert_for, rows_changed, utcnow
from shared.events import Event
from shared.metrics import METRICS
from shared.retention import every

log = logging.getLogger(__name__)
EventHandler = Callable[[Event, Session], None]
BatchHandler = Callable[[list[Event], Session], None]
Relevance = Callable[[list[Event], Session], set[str]]


@dataclass(frozen=True)
class Route:
    """How one handler takes one event type: the handler contract, in one place.

    * ``handle(item, session)``: one item-event, inside the inbox transaction;
    * ``many(items, session)``: the same for all of a batch's items of the type at once
      (one multi-row statement for the lot); used whenever there is more than one;
    * ``relevant(items, session) -> ids``: the items it would act on; where every route
      of a type says, events with none are neither claimed nor handled;
    * ``after_commit(items)``: run once the inbox transaction has committed, with the
      items it handled (a nudge, a side effect with its own retry record); an error
      there is logged, never undoes the commit.

    A service's routes are ``{event type: [Route, ...]}`` (its ``handlers.routes()``);
    the queues each type is bound to are declared in ``shared/topology.py``; a plain
    function stands for ``Route(handle=function)``.
    """

    handle: EventHandler
    many: BatchHandler | None = None
    relevant: Relevance | None = None
    after_commit: Callable[[list[Event]], None] | None = None

    @classmethod
    def of(cls, handler: Route | EventHandler) -> Route:
        return handler if isinstance(handler, Route) else cls(handle=handler)


Routes = dict[str, list[Route | EventHandler]]

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
    return rows_changed(session.execute(stmt)) == 1


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
    """A queue's handler: the event type picks the routes, all in one transaction.

    Called with one event, or (``.batch``) with many in a single transaction.  The inbox
    claims each event's id, so a redelivered batch event is a no-op as a whole; the
    routes then see one item-event per item (:meth:`Event.expand`): a handler is the
    same for a single event, a batch event, or many of them.
    """

    def __init__(self, db: Database, consumer: str, routes: Routes):
        self.db = db
        self.consumer = consumer
        self.routes: dict[str, list[Route]] = {
            event_type: [Route.of(h) for h in handlers] for event_type, handlers in routes.items()}

    def _run(self, event: Event, session: Session, done: list | None = None) -> None:
        self._apply(event.expand(), session, done)

    def _apply(self, items: list[Event], session: Session, done: list | None = None) -> None:
        """Hand item-events to their routes (``many`` whenever there is more than one);
        ``done`` gathers (route, items) for the after-commit step."""
        by_type: dict[str, list[Event]] = {}
        for item in items:
            by_type.setdefault(item.type, []).append(item)
        for event_type, same in by_type.items():
            for route in self.routes.get(event_type, []):
                if route.many is not None and len(same) > 1:
                    route.many(same, session)
                else:
                    for item in same:
                        route.handle(item, session)
                if route.after_commit is not None and done is not None:
                    done.append((route, same))

    def _after_commit(self, done: list) -> None:
        for route, items in done:
            try:
                route.after_commit(items)
            except Exception:  # noqa: BLE001 - the commit stands; the step has its own retries
                log.exception("after-commit step of %s failed", self.consumer)

    def __call__(self, event: Event) -> None:
        done: list = []
        with tracing.consumer_span(event, self.consumer):
            handle_once(self.db, self.consumer, event,
                        lambda e, session: self._run(e, session, done))
        self._after_commit(done)

    def batch(self, events: list[Event]) -> None:
        """Many events in one transaction: one inbox claim each, then their items."""
        done: list = []
        with tracing.batch_span(events, self.consumer), self.db.transaction() as session:
            events = self._worth_claiming(events, session)
            fresh = claim_many(session, events, self.consumer)
            duplicates = len(events) - len(fresh)
            if duplicates:
                METRICS.events_duplicate.labels(consumer=self.consumer).inc(duplicates)
            items: list[Event] = []
            for event in events:
                if str(event.id) in fresh:
                    fresh.discard(str(event.id))   # a batch may hold one event twice
                    items.extend(event.expand())
            self._apply(items, session, done)
        self._after_commit(done)

    def _worth_claiming(self, events: list[Event], session: Session) -> list[Event]:
        """The batch without events every handler of their type would ignore.

        A handler may say, with a ``relevant(items, session) -> set of item ids``
        attribute, which item-events it would act on; where every handler of a type says
        so, an event none of whose items is wanted is neither claimed nor handled
        (handling it would do nothing, so running it twice could not matter).  Notify's
        delivery-status callbacks see every outcome of a bin night, but only a few tenants
        have a callback URL: this saves an inbox row per event for the rest.
        """
        by_type: dict[str, list[Event]] = {}
        for event in events:
            by_type.setdefault(event.type, []).append(event)
        kept: list[Event] = []
        for event_type, same in by_type.items():
            routes = self.routes.get(event_type, [])
            filters = [route.relevant for route in routes if route.relevant is not None]
            if not routes or len(filters) < len(routes):
                kept.extend(same)
                continue
            expanded = [(event, event.expand()) for event in same]
            flat = [item for _, items in expanded for item in items]
            wanted: set[str] = set()
            for relevant in filters:
                wanted |= relevant(flat, session)
            kept.extend(event for event, items in expanded
                        if any(str(item.id) in wanted for item in items))
        return kept


def dispatcher(db: Database, consumer: str, routes: Routes) -> _Dispatcher:
    return _Dispatcher(db, consumer, routes)


class RoutingError(ValueError):
    """A service's routes and its queues' bindings disagree (found at start-up)."""


def check_bindings(service: str, routes: Routes) -> None:
    """Every event type bound to one of ``service``'s queues has a route, and every routed
    type is bound to one of them: a route nobody delivers to, or a binding nobody
    handles (its events would be acked and dropped), is a start-up error."""
    bound = {t for spec in topology.queues_for(service) for t in spec.event_types}
    unrouted = sorted(t for t in bound if not routes.get(t))
    unbound = sorted(set(routes) - bound)
    if unrouted or unbound:
        raise RoutingError(f"{service}: bound but not routed {unrouted}; "
                           f"routed but not bound {unbound}")


def queue_dispatchers(db: Database, service: str, routes: Routes) -> dict[str, _Dispatcher]:
    """One dispatcher per queue of ``service`` (topology), each given the routes of the
    event types bound to it; the queue's name is its inbox consumer name."""
    check_bindings(service, routes)
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
            count = rows_changed(session.execute(sa.delete(InboxRow).where(
                sa.tuple_(InboxRow.event_id, InboxRow.consumer).in_(due))))
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
