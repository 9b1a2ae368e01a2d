"""Transactional outbox and its relay.

A domain change and the events it causes are written in one database
transaction (:func:`add`).  The relay publishes unpublished rows with publisher
confirms and only then marks them published, in the same transaction that
locked them.  A crash between the publish and the commit publishes the event
again; consumers' inboxes make that second delivery a no-op.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import weakref

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared import events as events_module
from shared import tracing
from shared.bus import Bus, OutgoingMessage
from shared.db import Database, EncryptedText, KernelBase, UTCDateTime, rows_changed, utcnow
from shared.events import Event
from shared.metrics import METRICS

log = logging.getLogger(__name__)


class OutboxRow(KernelBase):
    __tablename__ = "outbox"
    __table_args__ = (
        # the relay's claim reads only what is waiting, in order, however many published
        # rows the table still holds (each service's outbox migration adds it)
        sa.Index("ix_outbox_unpublished", "seq", postgresql_where=sa.text("published_at IS NULL"),
                 sqlite_where=sa.text("published_at IS NULL")),
    )
    # never fetch server-side values after an INSERT (RETURNING only the key): a service
    # whose outbox has no ``traceparent`` column yet must not be asked for it
    __mapper_args__ = {"eager_defaults": False}

    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                     primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    event_type: Mapped[str] = mapped_column(sa.String(64))
    # events carry replies and personalisation: encrypted at rest like the rows they copy
    body: Mapped[str] = mapped_column(EncryptedText)
    correlation_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    # The W3C traceparent of the span the row was written in; the relay sends it as the
    # message's ``traceparent`` header.  Only where a service's migration added the column
    # (notify 0009, inbound 0008; not yet the scheduler): unset, it is left out of the
    # INSERT (FetchedValue) and never loaded unless asked for (deferred).
    traceparent: Mapped[str | None] = mapped_column(sa.String(64), server_default=sa.FetchedValue(),
                                                    deferred=True)


_TRACE_COLUMN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def keeps_traces(engine: sa.Engine) -> bool:
    """Has this service's outbox the ``traceparent`` column?

    Looked up once per engine; a "no" is looked up again after a minute (a process
    that started before its migration ran)."""
    known = _TRACE_COLUMN.get(engine)
    if known is None or (not known[0] and time.monotonic() - known[1] > 60):
        names = {c["name"] for c in sa.inspect(engine).get_columns(OutboxRow.__tablename__)}
        known = _TRACE_COLUMN[engine] = ("traceparent" in names, time.monotonic())
    return known[0]


def _engine(session: Session) -> sa.Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, sa.Connection) else bind


def add(session: Session, *events: Event) -> None:
    """Record events in the caller's transaction; they leave only if it commits.

    Each row keeps the current span's ``traceparent`` (shared/tracing.py), if any."""
    traceparent = tracing.current_traceparent() if events else None
    traced = traceparent is not None and keeps_traces(_engine(session))
    for event in events:
        row = OutboxRow(event_id=str(event.id), event_type=event.type, body=event.to_json(),
                        correlation_id=event.correlation_id)
        if traced:
            row.traceparent = traceparent
        session.add(row)


def add_many(session: Session, events: list[Event], traceparent: str | None = None) -> None:
    """Bulk form of :func:`add` (one INSERT, many rows); ``traceparent`` is kept on every
    row where the service's outbox has the column."""
    if not events:
        return
    now = utcnow()
    rows = [{"event_id": str(e.id), "event_type": e.type, "body": e.to_json(),
             "correlation_id": e.correlation_id, "created_at": now} for e in events]
    if traceparent is not None and keeps_traces(_engine(session)):
        for row in rows:
            row["traceparent"] = traceparent
    session.execute(sa.insert(OutboxRow), rows)


# -- batches collected over a transaction ---------------------------------------------
_PENDING = "hysbys.outbox.batches"


def collect(session: Session, event_type: str, tenant_id, item: dict,
            correlation_id: str | None = None) -> None:
    """Add one item to this transaction's batch of ``event_type`` for ``tenant_id``.

    The batches are written to the outbox as the transaction commits (one row per type
    and tenant for every :data:`shared.events.MAX_ITEMS` items), so a dispatcher that
    records 200 outcomes writes a handful of events, not 200; if the transaction rolls
    back, they are forgotten with it.  Each row keeps the trace of the span its first
    item was collected in."""
    if event_type not in events_module.BATCHED:
        raise events_module.EventError(f"{event_type} events do not carry batches")
    if correlation_id:
        item = {**item, "correlation_id": correlation_id}
    pending = session.info.setdefault(_PENDING, {})
    key = (event_type, str(tenant_id) if tenant_id else None)
    batch = pending.get(key)
    if batch is None:
        batch = pending[key] = ([], tracing.current_traceparent())
    batch[0].append(item)


def collected(session: Session) -> int:
    """How many items this transaction has collected and not yet written."""
    return sum(len(items) for items, _ in session.info.get(_PENDING, {}).values())


def write_collected(session: Session) -> int:
    """Write the collected batches to the outbox now (the commit does it otherwise);
    answers how many events that made."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return 0
    made = 0
    for (event_type, tenant_id), (items, traceparent) in pending.items():
        cids = {item.get("correlation_id") for item in items}
        batch = events_module.batches(event_type, tenant_id, items,
                                      correlation_id=cids.pop() if len(cids) == 1 else None)
        add_many(session, batch, traceparent)
        made += len(batch)
    return made


@sa.event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    write_collected(session)


@sa.event.listens_for(Session, "after_transaction_end")
def _forget_after_rollback(session: Session, transaction) -> None:
    # a rolled-back transaction's items go with it (a commit has taken them already)
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


class Relay:
    """Publishes a service's outbox to the broker."""

    def __init__(self, db: Database, bus: Bus, *, batch: int = 500, interval: float = 0.2):
        self.db = db
        self.bus = bus
        self.batch = batch
        self.interval = interval
        self.nudge = threading.Event()
        self._last_cleanup = 0.0

    def run_once(self, conn) -> int:
        """Publish one batch; returns how many were published."""
        with self.db.transaction() as session:
            rows = session.execute(self.claim_query()).all()
            if not rows:
                return 0
            self.bus.publish_batch(conn, [OutgoingMessage(r.event_id, r.event_type, r.body,
                                                          r.correlation_id,
                                                          getattr(r, "traceparent", None))
                                          for r in rows])
            now = utcnow()
            session.execute(sa.update(OutboxRow)
                            .where(OutboxRow.seq.in_([r.seq for r in rows]))
                            .values(published_at=now))
        return len(rows)

    def claim_query(self) -> sa.Select:
        """The next batch waiting to be published, oldest first (``ix_outbox_unpublished``).

        Plain rows, not ORM objects: the relay only reads these columns and marks them."""
        columns = [OutboxRow.seq, OutboxRow.event_id, OutboxRow.event_type, OutboxRow.body,
                   OutboxRow.correlation_id]
        if keeps_traces(self.db.engine):
            columns.append(OutboxRow.traceparent)
        query = (sa.select(*columns)
                 .where(OutboxRow.published_at.is_(None))
                 .order_by(OutboxRow.seq).limit(self.batch))
        if self.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return query

    def backlog(self) -> tuple[int, float]:
        """(unpublished events, age in seconds of the oldest)."""
        with self.db.read() as session:
            count, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(OutboxRow.created_at))
                .where(OutboxRow.published_at.is_(None))).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        return count, age

    def cleanup(self, keep: dt.timedelta = dt.timedelta(hours=24)) -> int:
        with self.db.transaction() as session:
            result = rows_changed(session.execute(sa.delete(OutboxRow).where(
                OutboxRow.published_at.is_not(None), OutboxRow.published_at < utcnow() - keep)))
        return result

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with self.bus.connection(confirm_each=False) as conn:
                    conn.ensure_connection(max_retries=3)
                    while not stop.is_set():
                        published = self.run_once(conn)
                        if published == 0:
                            self._housekeeping()
                            # an idle publisher reads nothing, so it must send its own
                            # heartbeats or the broker drops it after two missed intervals
                            conn.heartbeat_check()
                            self.nudge.wait(self.interval)
                            self.nudge.clear()
            except Exception:
                log.exception("outbox relay for %s failed; retrying", self.db.service)
                stop.wait(1.0)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_cleanup < 60:
            return
        self._last_cleanup = now
        count, age = self.backlog()
        METRICS.outbox_backlog.labels(service=self.db.service).set(count)
        METRICS.outbox_oldest_age.labels(service=self.db.service).set(age)
        self.cleanup()
