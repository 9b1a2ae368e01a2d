"""Notify's retention: roll the figures up, then delete personal data past each tenant's period.

What goes, once a tenant's ``retention_days`` (default 7) are over:

* ``notifications`` — recipient, body, subject and personalisation-derived text
  live on the row, so the whole row goes; afterwards ``GET /v2/notifications/{id}``
  answers 404, as GOV.UK Notify does after its retention period;
* ``received_texts`` — the citizen's number and words;
* ``bulk_jobs`` — their row errors quote recipients.

Delivery-status callbacks (``status_callbacks``: ids and a status, no personal data)
are forgotten three days after they were delivered or given up.

What stays: ``daily_figures`` (rolled up first, see :mod:`services.notify.opendata`),
templates, and the suppression list — an opt-out must be honoured for as long as
the tenant sends, so it is not "past retention".
"""
from __future__ import annotations

import datetime as dt
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TextIO

from services.notify import opendata, status_callbacks
from services.notify.models import BulkJob, Notification, ReceivedText
from shared import retention
from shared.db import Database, utcnow

PERSONAL_DATA = (
    retention.PersonalData(Notification, "created_at"),
    retention.PersonalData(ReceivedText, "created_at"),
    retention.PersonalData(BulkJob, "created_at"),
)
INTERVAL = 300.0   # seconds; a run with nothing to do is a few indexed counts


def run_once(db: Database, *, now: dt.datetime | None = None,
             progress: retention.Progress | None = None) -> dict[str, int]:
    """Roll up the open-data figures (sealing the days about to go), then purge."""
    now = now or utcnow()   # one instant for both, or a midnight between them loses a day
    opendata.roll_up(db, now=now)
    return retention.purge(db, PERSONAL_DATA, now=now, progress=progress)


def loop(db: Database, interval: float = INTERVAL, *,
         clock: Callable[[], dt.datetime] = utcnow) -> Callable[[threading.Event], None]:
    """The background loop the notify worker runs (append it to its ``Background`` loops);
    it also forgets delivery-status callbacks delivered or given up days ago.  ``clock``
    is the service's (the one its API stamps ``created_at`` with), so "older than the
    retention period" is measured on the same clock the rows were written by."""
    def job() -> None:
        run_once(db, now=clock())
        status_callbacks.forget_done(db)
    return retention.every(interval, job, "notify-retention")


def run_and_report(db: Database, out: TextIO | None = None, *,
                   also: Iterable[tuple[str, Callable[..., dict[str, int]], Database]] = ()) -> int:
    """``hysbys retention run``: one roll-up and purge now, printing progress as it deletes;
    then each of ``also`` — (service, its ``run_once``, its database): inbound, scheduler."""
    out = out or sys.stdout

    def progress(table: str, slug: str, deleted: int) -> None:
        print(f"  {table:<16} {slug:<32} {deleted:>10,} deleted", file=out, flush=True)

    print("Rolling up the daily figures, then purging personal data past each tenant's "
          "retention…", file=out, flush=True)
    deleted = run_once(db, progress=progress)
    print("Done: " + ", ".join(f"{n:,} {table}" for table, n in deleted.items()) + " deleted.",
          file=out, flush=True)
    for service, run, other in also:
        print(f"{service}: purging (or blanking) personal data past retention…", file=out, flush=True)
        deleted = run(other, progress=progress)
        print("Done: " + ", ".join(f"{n:,} {table}" for table, n in deleted.items()) + ".",
              file=out, flush=True)
    return 0
