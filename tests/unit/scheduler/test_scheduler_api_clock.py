"""The scheduler's API reads "now" from the service's clock (SchedulerService.clock), not
the wall clock: a test, or an operator replaying a day, gets the same answers at any hour."""
from __future__ import annotations

import datetime as dt

from tests.unit.scheduler.test_scheduler_appointments import book, campaign_id, tenant  # noqa: F401

MORNING = dt.datetime(2020, 3, 2, 9, 0, tzinfo=dt.UTC)


def test_in_the_future_means_after_the_services_clock(scheduler, book):  # noqa: F811
    scheduler.clock = lambda: MORNING
    later = book("RENAL-0100", starts_at=(MORNING + dt.timedelta(hours=6)).isoformat())
    assert later.status_code == 201, later.get_json()     # 2020: past by the wall clock
    earlier = book("RENAL-0101", starts_at=(MORNING - dt.timedelta(hours=1)).isoformat())
    assert earlier.status_code == 400
    assert "starts_at must be in the future" in str(earlier.get_json())
