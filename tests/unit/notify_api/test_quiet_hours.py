"""Quiet hours: local Welsh time, both DST changes, windows across midnight; deferred, not dropped."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from notify_api_support import SMS_TEMPLATE, new_tenant

from services.notify import quiet_hours
from services.notify.models import Notification
from services.notify.quiet_hours import Window, defer_until, is_quiet, window_end
from services.notify.sending import SendRequest, accept
from shared.tenancy import Tenant

NIGHT = Window.parse({"start": "21:00", "end": "08:00"})
LUNCH = Window.parse({"start": "12:00", "end": "13:30"})
EARLY = Window.parse({"start": "00:30", "end": "01:30"})   # ends inside the DST hour


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize("window,moment,quiet,ends", [
    # winter (GMT = UTC)
    (NIGHT, "2026-01-14 20:59", False, None),
    (NIGHT, "2026-01-14 21:00", True, "2026-01-15 08:00"),
    (NIGHT, "2026-01-14 23:59", True, "2026-01-15 08:00"),
    (NIGHT, "2026-01-15 07:59", True, "2026-01-15 08:00"),
    (NIGHT, "2026-01-15 08:00", False, None),
    # summer (BST = UTC+1): 21:00 local is 20:00 UTC, 08:00 local is 07:00 UTC
    (NIGHT, "2026-07-01 19:59", False, None),
    (NIGHT, "2026-07-01 20:00", True, "2026-07-02 07:00"),
    (NIGHT, "2026-07-02 06:59", True, "2026-07-02 07:00"),
    (NIGHT, "2026-07-02 07:00", False, None),
    # spring forward, Sunday 29 March 2026: the night starts in GMT and ends in BST
    (NIGHT, "2026-03-28 21:30", True, "2026-03-29 07:00"),
    (NIGHT, "2026-03-29 00:59", True, "2026-03-29 07:00"),
    (NIGHT, "2026-03-29 01:00", True, "2026-03-29 07:00"),
    # fall back, Sunday 25 October 2026: the night starts in BST and ends in GMT
    (NIGHT, "2026-10-24 20:30", True, "2026-10-25 08:00"),
    (NIGHT, "2026-10-25 00:30", True, "2026-10-25 08:00"),
    (NIGHT, "2026-10-25 01:30", True, "2026-10-25 08:00"),
    # a window inside one day
    (LUNCH, "2026-01-14 11:59", False, None),
    (LUNCH, "2026-01-14 12:00", True, "2026-01-14 13:30"),
    (LUNCH, "2026-07-14 11:00", True, "2026-07-14 12:30"),
    (LUNCH, "2026-07-14 12:30", False, None),
    # an end time that does not exist (spring) or happens twice (autumn)
    (EARLY, "2026-03-29 00:45", True, "2026-03-29 01:30"),   # 01:30 GMT is 02:30 BST: after the gap
    (EARLY, "2026-10-24 23:45", True, "2026-10-25 00:30"),   # 00:45 BST -> first 01:30 (BST)
    (EARLY, "2026-10-25 01:10", True, "2026-10-25 01:30"),   # 01:10 GMT -> the second 01:30 (GMT)
])
def test_quiet_hours_follow_welsh_wall_clock_time(window, moment, quiet, ends):
    now = utc(moment)
    assert is_quiet(now, window) is quiet
    if quiet:
        end = window_end(now, window)
        assert end == utc(ends)
        assert end > now and not is_quiet(end, window)


def test_no_window_or_an_empty_one_is_never_quiet():
    assert Window.parse(None) is None
    assert Window.parse({"start": "08:00", "end": "08:00"}) is None
    assert not is_quiet(utc("2026-01-14 23:00"), None)


@pytest.mark.parametrize("channel,urgent,deferred", [
    ("sms", False, True), ("sms", True, False), ("email", False, False), ("email", True, False),
])
def test_only_a_non_urgent_text_waits(channel, urgent, deferred):
    until = defer_until(NIGHT, utc("2026-01-14 23:00"), channel=channel, urgent=urgent)
    assert (until is not None) is deferred


def accept_at(notify, tenant_id: str, now: dt.datetime, template_id: str, **kw) -> Notification:
    with notify.runtime.db.transaction() as session:
        tenant = session.get(Tenant, tenant_id)
        n = accept(session, tenant, SendRequest(
            channel="sms", template_id=template_id, recipient="07700900111",
            personalisation={"name": "Dai", "bin type": "du"}, **kw), now=now)
        session.expunge(n)
        return n


def test_a_text_accepted_at_night_is_deferred_to_the_morning_and_released_when_due(
        notify, client):
    tenant = new_tenant(notify, "penfro-nos", quiet_hours={"start": "21:00", "end": "08:00"})
    tid = client.post("/api/templates", json=SMS_TEMPLATE, headers=tenant.live).get_json()["id"]
    night = utc("2026-01-14 22:15")
    n = accept_at(notify, tenant.id, night, tid)
    urgent = accept_at(notify, tenant.id, night, tid, urgent=True)
    assert (n.status, n.not_before) == ("deferred", utc("2026-01-15 08:00"))
    assert urgent.status == "created"
    with notify.runtime.db.transaction() as session:
        assert quiet_hours.release_due(session, utc("2026-01-15 07:59")) == 0
    with notify.runtime.db.transaction() as session:
        assert quiet_hours.release_due(session, utc("2026-01-15 08:00")) == 1
    with notify.runtime.db.read() as session:
        assert session.get(Notification, n.id).status == "created"
        events = session.execute(sa.text("SELECT event_type FROM outbox")).scalars().all()
    assert "notification.deferred" in events, "the deferral is an event"


def test_a_tenant_without_quiet_hours_never_defers(notify, client, tenant, sms_template):
    n = accept_at(notify, tenant.id, utc("2026-01-14 23:00"), sms_template["id"])
    assert n.status == "created" and n.not_before is None


NIGHT_QUIET = {"start": "21:00", "end": "08:00"}
HALF_NINE = utc("2026-01-14 21:30")     # GMT: 21:30 in Wales


def send_at(notify, client, headers: dict, template_id: str, when: dt.datetime) -> dict:
    """A v2 API send with the service's clock at ``when``, then the notification as read back."""
    notify.clock = lambda: when
    r = client.post("/v2/notifications/sms", headers=headers, json={
        "phone_number": "07700900111", "template_id": template_id,
        "personalisation": {"name": "Dai", "bin type": "du"}})
    assert r.status_code == 201, r.get_data(as_text=True)
    return client.get(f"/v2/notifications/{r.get_json()['id']}", headers=headers).get_json()


def test_a_v2_api_send_at_half_past_nine_goes_at_once_with_a_live_or_a_test_key(notify, client):
    tenant = new_tenant(notify, "nos-api", quiet_hours=NIGHT_QUIET)
    tid = client.post("/api/templates", json=SMS_TEMPLATE, headers=tenant.live).get_json()["id"]
    for headers in (tenant.live, tenant.test):
        got = send_at(notify, client, headers, tid, HALF_NINE)
        assert got["status"] != "deferred" and got["not_before"] is None, got


def test_a_tenant_that_turns_quiet_hours_on_for_api_sends_holds_a_live_key_but_never_a_test_key(
        notify, client):
    tenant = new_tenant(notify, "nos", quiet_hours=NIGHT_QUIET, quiet_hours_for_api=True)
    tid = client.post("/api/templates", json=SMS_TEMPLATE, headers=tenant.live).get_json()["id"]
    live = send_at(notify, client, tenant.live, tid, HALF_NINE)
    assert live["status"] == "deferred" and live["not_before"] == "2026-01-15T08:00:00.000000Z"
    test = send_at(notify, client, tenant.test, tid, HALF_NINE)
    assert test["status"] != "deferred" and test["not_before"] is None


def test_scheduled_work_is_still_held_at_half_past_nine_but_a_test_key_never_is(notify, client):
    """A campaign's notification.requested (not transactional) waits; a test key's does not."""
    tenant = new_tenant(notify, "nos-bulk", quiet_hours=NIGHT_QUIET)
    tid = client.post("/api/templates", json=SMS_TEMPLATE, headers=tenant.live).get_json()["id"]
    campaign = accept_at(notify, tenant.id, HALF_NINE, tid)
    test = accept_at(notify, tenant.id, HALF_NINE, tid, key_type="test")
    assert (campaign.status, campaign.not_before) == ("deferred", utc("2026-01-15 08:00"))
    assert (test.status, test.not_before) == ("created", None)


@pytest.mark.parametrize("key_type,transactional,api_on,held", [
    ("live", False, False, True), ("team", False, False, True), ("test", False, False, False),
    ("live", True, False, False), ("team", True, False, False), ("test", True, False, False),
    ("live", True, True, True), ("team", True, True, True), ("test", True, True, False),
    ("live", False, True, True),
])
def test_which_sends_quiet_hours_hold(key_type, transactional, api_on, held):
    tenant = Tenant(id="t", slug="t", name="T", config={"quiet_hours_for_api": api_on})
    assert quiet_hours.holds(tenant, key_type=key_type, transactional=transactional) is held
