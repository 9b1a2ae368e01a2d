"""The scheduler's retention: an appointment goes ``retention_days`` after it took place.

An appointment holds a patient's number or address, language and personalisation,
and its reminder occurrences copy that personalisation; both go once the tenant's
``retention_days`` (default 7, Europe/London days) have passed since ``starts_at``
— every reminder was due before it.  The campaign and its per-occurrence figures
(``campaign_stats``) stay.

Kept on purpose: ``subscribers`` — the audience a citizen (or the team, for them)
signed up to, kept while they are subscribed; an opted-out subscriber stays so that
the STOP holds when the same list is uploaded again (an upload never clears it).
An erasure request removes one with ``DELETE /api/subscribers/{id}`` (docs/scheduling.md,
"Erasure").
"""
from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from services.scheduler.models import Appointment, Occurrence
from shared import retention
from shared.db import Database, utcnow

PERSONAL_DATA = (
    retention.PersonalData(Appointment, "starts_at", dependents=((Occurrence, "appointment_id"),)),
)
INTERVAL = 300.0


def run_once(db: Database, *, now: dt.datetime | None = None,
             progress: retention.Progress | None = None) -> dict[str, int]:
    return retention.purge(db, PERSONAL_DATA, now=now, progress=progress)


def loop(db: Database, interval: float = INTERVAL, *,
         clock: Callable[[], dt.datetime] = utcnow) -> Callable[[threading.Event], None]:
    """The background loop the scheduler worker runs, on the service's clock (the one its
    API judges "in the future" and "today" by)."""
    return retention.every(interval, lambda: run_once(db, now=clock()), "scheduler-retention")
