"""Retention: personal data removed once each tenant's retention period is over.

A tenant keeps personal data (numbers, addresses, message bodies) for
``retention_days`` whole days (its setting; 7 by default, as GOV.UK Notify).
The period is counted in Europe/London calendar days, so a day's rows all go
together: with 7 days, on 25 November everything created before 18 November
(local midnight) is deleted.  A service first folds what it wants to keep into
aggregates, then calls :func:`purge` with the tables that hold personal data:
:class:`PersonalData` rows go whole (with rows that depend on them);
:class:`PersonalColumns` rows are records the tenant keeps, whose personal
columns are blanked instead.

Deletion runs in small batches, each its own transaction, so a purge of a
million rows never holds a long lock and a crash mid-way just leaves the rest
for the next run.  Running two purges at once is harmless: each deletes what
is still there.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from shared.db import Database, utcnow
from shared.metrics import METRICS
from shared.tenancy import DEFAULT_CONFIG, Tenant

log = logging.getLogger(__name__)

LONDON = ZoneInfo("Europe/London")
DEFAULT_DAYS: int = DEFAULT_CONFIG["retention_days"]
BATCH = 1000

Progress = Callable[[str, str, int], None]   # (table, tenant slug, rows deleted so far)


@dataclass(frozen=True)
class PersonalData:
    """A table holding personal data: an ORM class with ``tenant_id`` and a timestamp column.

    Its rows go whole.  ``dependents`` are ``(model, column)`` pairs whose rows refer to
    a purged row's key and go with it, in the same transaction (an appointment's
    reminder occurrences, which copy its personalisation).
    """

    model: type[Any]    # an ORM class: its columns are read by name
    timestamp: str = "created_at"
    dependents: tuple[tuple[type[Any], str], ...] = ()

    @property
    def table(self) -> str:
        return self.model.__tablename__

    def remove(self, db: Database, tenant_id: str, before: dt.datetime, batch: int,
               progress: Callable[[int], object]) -> int:
        return _purge_one(db, self, tenant_id, before, batch, progress)


@dataclass(frozen=True)
class PersonalColumns:
    """A record the tenant keeps whose personal columns are blanked (set NULL) after retention.

    ``when`` narrows which rows are due (a service request only once it is closed);
    the timestamp is then the last change.  A blanked row is not touched again.
    """

    model: type[Any]    # an ORM class: its columns are read by name
    timestamp: str
    columns: tuple[str, ...]
    when: Callable[[type[Any]], sa.ColumnElement[bool]] | None = None

    @property
    def table(self) -> str:
        return self.model.__tablename__

    def remove(self, db: Database, tenant_id: str, before: dt.datetime, batch: int,
               progress: Callable[[int], object]) -> int:
        return _blank_one(db, self, tenant_id, before, batch, progress)


def retention_days(tenant: Tenant) -> int:
    """The tenant's retention in whole days: at least 1, :data:`DEFAULT_DAYS` if unset or unreadable."""
    value = tenant.setting("retention_days")
    try:
        days = DEFAULT_DAYS if value is None else int(value)
    except (TypeError, ValueError):
        days = DEFAULT_DAYS
    # 0 would purge today's messages before their receipts arrive
    return max(1, days)


def local_day(moment: dt.datetime) -> dt.date:
    """The Europe/London calendar day an aware instant falls on."""
    return moment.astimezone(LONDON).date()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants a Europe/London day starts and ends (23 or 25 hours around DST)."""
    start = dt.datetime.combine(day, dt.time(), LONDON)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), LONDON)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def first_kept_day(now: dt.datetime, days: int) -> dt.date:
    """The oldest local day whose rows are still kept: today and the ``days`` before it."""
    return local_day(now) - dt.timedelta(days=days)


def cutoff(now: dt.datetime, days: int) -> dt.datetime:
    """Rows created before this instant are past retention."""
    return day_bounds(first_kept_day(now, days))[0]


def purge(db: Database, targets: Iterable[PersonalData | PersonalColumns], *,
          now: dt.datetime | None = None, batch: int = BATCH,
          progress: Progress | None = None) -> dict[str, int]:
    """Delete (or blank) every tenant's rows that are past its retention; answers rows
    deleted (or blanked) per table."""
    now = now or utcnow()
    targets = list(targets)
    with db.read() as session:
        tenants = [(t.id, t.slug, retention_days(t)) for t in session.scalars(sa.select(Tenant))]
    deleted = {target.table: 0 for target in targets}
    for tenant_id, slug, days in tenants:
        before = cutoff(now, days)
        for target in targets:
            report = _reporter(progress, target.table, slug)
            count = target.remove(db, tenant_id, before, batch, report)
            deleted[target.table] += count
            if count:
                log.info("retention: %s %d %s rows of %s older than %s",
                         "blanked" if isinstance(target, PersonalColumns) else "deleted", count,
                         target.table, slug, before.isoformat())
    METRICS.retention_last_success.labels(service=db.service).set(time.time())
    return deleted


def _reporter(progress: Progress | None, table: str, slug: str) -> Callable[[int], object]:
    return (lambda n: progress(table, slug, n)) if progress else (lambda n: None)


def _purge_one(db: Database, target: PersonalData, tenant_id: str, before: dt.datetime,
               batch: int, progress: Callable[[int], object]) -> int:
    model = target.model
    keys = sa.inspect(model).primary_key
    pk = keys[0] if len(keys) == 1 else sa.tuple_(*keys)    # composite keys too
    old = sa.and_(model.tenant_id == tenant_id, getattr(model, target.timestamp) < before)
    total = 0
    while True:
        # Select then delete by key: portable (no DELETE ... LIMIT), and each batch
        # is a short transaction.
        with db.transaction() as session:
            ids = (session.scalars(sa.select(pk).where(old).limit(batch)).all() if len(keys) == 1
                   else [tuple(r) for r in session.execute(sa.select(*keys).where(old)
                                                           .limit(batch))])
            if ids:
                for dependent, column in target.dependents:
                    session.execute(sa.delete(dependent).where(getattr(dependent, column).in_(ids)))
                session.execute(sa.delete(model).where(pk.in_(ids)))
        if not ids:
            return total
        total += len(ids)
        METRICS.retention_purged.labels(service=db.service, table=target.table).inc(len(ids))
        progress(total)
        if len(ids) < batch:
            return total


def _blank_one(db: Database, target: PersonalColumns, tenant_id: str, before: dt.datetime,
               batch: int, progress: Callable[[int], object]) -> int:
    model = target.model
    (pk,) = sa.inspect(model).primary_key
    due = [model.tenant_id == tenant_id, getattr(model, target.timestamp) < before,
           sa.or_(*(getattr(model, c).is_not(None) for c in target.columns))]
    if target.when is not None:
        due.append(target.when(model))
    total = 0
    while True:
        with db.transaction() as session:
            ids = session.scalars(sa.select(pk).where(*due).limit(batch)).all()
            if ids:
                session.execute(sa.update(model).where(pk.in_(ids))
                                .values({c: None for c in target.columns}))
        if not ids:
            return total
        total += len(ids)
        METRICS.retention_purged.labels(service=db.service, table=target.table).inc(len(ids))
        progress(total)
        if len(ids) < batch:
            return total


def every(interval: float, job: Callable[[], object], name: str) -> Callable[[threading.Event], None]:
    """A background loop (see :class:`shared.runtime.Background`) running ``job`` now, then
    every ``interval`` seconds until stopped; a failure is logged and retried next time."""
    def run_forever(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                job()
            except Exception:  # noqa: BLE001 - the next run tries again
                log.exception("%s failed; retrying in %.0fs", name, interval)
            stop.wait(interval)
    run_forever.__name__ = name
    return run_forever
