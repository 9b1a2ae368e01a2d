"""Personal data goes after each tenant's retention period; the figures and opt-outs stay."""
from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa
from ops_support import add_bulk_job, add_notifications, add_opt_out, add_reply, add_tenant

from services.notify import retention as notify_retention
from services.notify.models import BulkJob, Notification, ReceivedText, Suppression
from shared import retention

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def count(svc, model, tenant) -> int:
    with svc.runtime.db.read() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model)
                              .where(model.tenant_id == tenant.id))


def test_rows_older_than_the_retention_period_go_and_newer_ones_stay(notify):
    tenant = add_tenant(notify, "pembrokeshire")
    add_notifications(notify, tenant, "delivered", 3, created_at=days_ago(8))
    add_notifications(notify, tenant, "delivered", 2, created_at=days_ago(6))
    add_reply(notify, tenant, days_ago(10))
    add_reply(notify, tenant, days_ago(1))
    add_bulk_job(notify, tenant, days_ago(9))
    deleted = notify_retention.run_once(notify.runtime.db, now=NOW)
    assert deleted == {"notifications": 3, "received_texts": 1, "bulk_jobs": 1}
    assert count(notify, Notification, tenant) == 2
    assert count(notify, ReceivedText, tenant) == 1
    assert count(notify, BulkJob, tenant) == 0


def test_whole_local_days_are_kept_so_a_day_goes_all_at_once(notify):
    tenant = add_tenant(notify, "ceredigion")
    # 7 days: on 25 November everything from 18 November (London) on is kept
    add_notifications(notify, tenant, "sent", created_at=dt.datetime(2026, 11, 17, 23, 59, tzinfo=dt.UTC))
    kept = add_notifications(notify, tenant, "sent",
                             created_at=dt.datetime(2026, 11, 18, 0, 1, tzinfo=dt.UTC))
    notify_retention.run_once(notify.runtime.db, now=NOW)
    with notify.runtime.db.read() as session:
        assert session.scalars(sa.select(Notification.id)).all() == kept


def test_each_tenant_keeps_data_for_its_own_retention_period(notify):
    short = add_tenant(notify, "short", retention_days=3)
    long = add_tenant(notify, "long", retention_days=30)
    for tenant in (short, long):
        add_notifications(notify, tenant, "delivered", created_at=days_ago(10))
    notify_retention.run_once(notify.runtime.db, now=NOW)
    assert count(notify, Notification, short) == 0
    assert count(notify, Notification, long) == 1


def test_opt_outs_are_kept_for_as_long_as_the_tenant_sends(notify):
    tenant = add_tenant(notify, "conwy")
    add_opt_out(notify, tenant, days_ago(400))
    notify_retention.run_once(notify.runtime.db, now=NOW)
    assert count(notify, Suppression, tenant) == 1


def test_a_purge_deletes_in_batches_and_reports_its_progress(notify):
    tenant = add_tenant(notify, "gwynedd")
    add_notifications(notify, tenant, "delivered", 5, created_at=days_ago(20))
    progress: list[tuple[str, str, int]] = []
    deleted = retention.purge(notify.runtime.db, notify_retention.PERSONAL_DATA, now=NOW,
                              batch=2, progress=lambda *p: progress.append(p))
    assert deleted["notifications"] == 5
    assert progress == [("notifications", "gwynedd", 2), ("notifications", "gwynedd", 4),
                        ("notifications", "gwynedd", 5)]


def test_a_purge_is_counted_in_the_metrics(notify, metric):
    tenant = add_tenant(notify, "torfaen")
    before = metric("hysbys_retention_purged_rows_total", service="notify",
                    table="notifications") or 0
    add_notifications(notify, tenant, "delivered", 4, created_at=days_ago(30))
    notify_retention.run_once(notify.runtime.db, now=NOW)
    assert metric("hysbys_retention_purged_rows_total", service="notify",
                  table="notifications") == before + 4
    assert metric("hysbys_retention_last_success_timestamp_seconds", service="notify") > 0


@pytest.mark.parametrize(("setting", "days"), [(None, 7), (0, 1), ("fourteen", 7), (14, 14)])
def test_retention_days_are_at_least_one_and_default_to_seven(setting, days):
    from shared.tenancy import Tenant

    assert retention.retention_days(Tenant(config={"retention_days": setting})) == days


def test_a_local_day_is_23_hours_when_the_clocks_go_forward():
    start, end = retention.day_bounds(dt.date(2026, 3, 29))
    assert (start, end - start) == (dt.datetime(2026, 3, 29, tzinfo=dt.UTC), dt.timedelta(hours=23))


def test_the_cutoff_is_london_midnight_in_summer_time():
    now = dt.datetime(2026, 7, 10, 9, 0, tzinfo=dt.UTC)
    assert retention.cutoff(now, 7) == dt.datetime(2026, 7, 2, 23, 0, tzinfo=dt.UTC)


def test_the_background_loop_runs_at_once_and_carries_on_after_a_failure(caplog):
    stop, calls = threading.Event(), []

    def job():
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("database restarting")
        stop.set()

    loop = retention.every(0, job, "test-retention")
    loop(stop)
    assert calls == [0, 1]
    assert "test-retention failed" in caplog.text
    assert loop.__name__ == "test-retention"


def test_a_purge_by_hand_shows_its_progress(notify):
    import io

    tenant = add_tenant(notify, "wrexham")
    add_notifications(notify, tenant, "delivered", 3, created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    out = io.StringIO()
    assert notify_retention.run_and_report(notify.runtime.db, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[1].split() == ["notifications", "wrexham", "3", "deleted"]
    assert lines[-1] == "Done: 3 notifications, 0 received_texts, 0 bulk_jobs deleted."


def test_the_workers_retention_loop_judges_age_on_the_services_clock(notify):
    """The loop the notify worker runs asks the service's clock, the one its API stamps
    ``created_at`` with: a row written at the service's "now" is never past retention,
    whatever the wall clock says (a test clock set in January, run in December)."""
    tenant = add_tenant(notify, "caerdydd")
    notify.clock = lambda: NOW
    add_notifications(notify, tenant, "delivered", 2, created_at=days_ago(6))
    add_notifications(notify, tenant, "delivered", 1, created_at=days_ago(8))
    loop = next(f for f in notify.background(dispatcher=False).loops
                if f.__name__ == "notify-retention")
    stop = threading.Event()
    runner = threading.Thread(target=loop, args=(stop,))
    runner.start()
    try:
        for _ in range(200):         # the loop's first pass runs at once
            if count(notify, Notification, tenant) == 2:
                break
            time.sleep(0.01)
    finally:
        stop.set()
        runner.join(5)
    assert count(notify, Notification, tenant) == 2, "the 6-day-old rows stay, the 8-day-old one goes"
