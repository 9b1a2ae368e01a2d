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


def test_a_campaign_is_booked_and_sent_by_the_service_s_clock(scheduler, client, new_tenant):
    """The campaigns API and the ticker read the same clock: "in the past" when booking
    and "due" when sending are one judgement (both read the wall clock apart before)."""
    import uuid

    t = new_tenant("penfro")
    now = [MORNING]
    scheduler.clock = lambda: now[0]
    body = {"name": "Biniau", "template_id": str(uuid.uuid4()), "channel": "sms",
            "audience": {}}
    early = client.post("/api/campaigns", headers=t.headers(), json={
        **body, "send_at": (MORNING - dt.timedelta(hours=2)).isoformat()})
    assert early.status_code == 400 and "send_at" in str(early.get_json())
    booked = client.post("/api/campaigns", headers=t.headers(), json={
        **body, "send_at": (MORNING + dt.timedelta(hours=1)).isoformat()})
    assert booked.status_code == 201, booked.get_json()     # 2020: past by the wall clock
    campaign = booked.get_json()["id"]

    def status() -> str:
        [occurrence] = client.get(f"/api/campaigns/{campaign}",
                                  headers=t.headers()).get_json()["occurrences"]
        return occurrence["status"]
    scheduler.ticker.run_once()
    assert status() == "pending", "not due yet by the service's clock"
    now[0] = MORNING + dt.timedelta(hours=1, minutes=1)
    scheduler.ticker.run_once()
    assert status() != "pending"
