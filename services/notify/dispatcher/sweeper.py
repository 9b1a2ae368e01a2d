"""The sweeper: repairs what a crashed dispatcher left ``sending``.

A row claimed but never stamped (no provider was called) goes back to
``created``.  A stamped row without an outcome after ``stale_after`` ends
``technical-failure`` ("outcome unknown") and is never sent again: the provider
may have sent it, and a text sent twice is worse than one reported lost.  Every
dispatcher sweeps; ``SKIP LOCKED`` keeps two from failing the same row.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from services.notify.models import Notification
from services.notify.sending import set_status
from shared import logs
from shared.db import Database


def sweep(db: Database, stale_after: dt.timedelta, now: dt.datetime,
          limit: int = 500) -> tuple[int, int]:
    """Repair stale ``sending`` rows; returns (re-queued, failed)."""
    cutoff = now - stale_after
    with db.transaction() as session:
        requeued = session.execute(
            sa.update(Notification)
            .where(Notification.status == "sending", Notification.handoff_at.is_(None),
                   Notification.updated_at < cutoff)
            .values(status="created", updated_at=now)).rowcount or 0
        q = (sa.select(Notification).where(Notification.status == "sending",
                                           Notification.handoff_at < cutoff).limit(limit))
        if db.dialect == "postgresql":
            q = q.with_for_update(skip_locked=True)
        unknown = session.scalars(q).all()
        for row in unknown:
            with logs.bound(correlation_id=row.correlation_id, tenant_id=row.tenant_id,
                            notification_id=row.id):
                set_status(session, row, "technical-failure", cid=row.correlation_id,
                           reason=f"outcome unknown: the hand-off began at "
                                  f"{row.handoff_at:%H:%M:%S} UTC and no answer was recorded; "
                                  "not sent again")
    return requeued, len(unknown)
