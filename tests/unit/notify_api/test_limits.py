"""Rate limits per key and daily limits per tenant: Notify's 429 bodies and Retry-After."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from notify_api_support import errors, new_tenant

from services.notify import limits
from services.notify.models import Notification, UsageCounter
from shared.db import utcnow
from shared.errors import RateLimitError, TooManyRequestsError
from shared.tenancy import ApiKey


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def key_id(notify, tenant_id: str, key_type: str) -> str:
    with notify.runtime.db.read() as session:
        return session.scalars(sa.select(ApiKey.id).where(
            ApiKey.tenant_id == tenant_id, ApiKey.key_type == key_type)).one()


def fill(notify, scope: str, subject: str, count: int) -> None:
    """Use up a counter in this window and the next (a test may cross a minute boundary)."""
    now = utcnow()
    window = limits.minute_window if scope == "key-minute" else limits.day_window
    with notify.runtime.db.transaction() as session:
        for moment in (now, window(now)[1]):
            limits.bump(session, scope, subject, window(moment)[0], count)


def test_the_counter_is_one_atomic_upsert_per_window(notify):
    start = utc("2026-01-14 10:00")
    with notify.runtime.db.transaction() as session:
        assert [limits.bump(session, "key-minute", "k", start, 1) for _ in range(3)] == [1, 2, 3]
        assert limits.bump(session, "key-minute", "k", start + dt.timedelta(minutes=1), 5) == 5
        assert limits.bump(session, "tenant-day", "k", start, 2) == 2
    with notify.runtime.db.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(UsageCounter)) == 3


def test_the_per_minute_limit_answers_notifys_rate_limit_error_until_the_minute_is_over(notify):
    now = utc("2026-01-14 10:00:45")
    with notify.runtime.db.transaction() as session:
        for _ in range(3):
            limits.check_request_rate(session, key_id="k", key_type="live", per_minute=3, now=now)
        with pytest.raises(RateLimitError) as err:
            limits.check_request_rate(session, key_id="k", key_type="live", per_minute=3, now=now)
        limits.check_request_rate(session, key_id="k", key_type="live", per_minute=3,
                                  now=now + dt.timedelta(seconds=15))   # a new minute
    assert err.value.message == \
        "Exceeded rate limit for key type LIVE of 3 requests per 60 seconds"
    assert err.value.headers == {"Retry-After": "15"}


@pytest.mark.parametrize("moment,start,end", [
    ("2026-01-14 23:30", "2026-01-14 00:00", "2026-01-15 00:00"),   # GMT
    ("2026-07-14 23:30", "2026-07-14 23:00", "2026-07-15 23:00"),   # BST: the next day already
    ("2026-03-29 12:00", "2026-03-29 00:00", "2026-03-29 23:00"),   # a 23-hour day
    ("2026-10-25 12:00", "2026-10-24 23:00", "2026-10-26 00:00"),   # a 25-hour day
])
def test_the_daily_limit_resets_at_midnight_in_wales(moment, start, end):
    assert limits.day_window(utc(moment)) == (utc(start), utc(end))


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(notify, client):
    tenant = new_tenant(notify, rate_limit_per_minute=1000)
    fill(notify, "key-minute", key_id(notify, tenant.id, "live"), 1000)
    r = client.get("/v2/notifications", headers=tenant.live)
    assert errors(r) == (429, "RateLimitError",
                         "Exceeded rate limit for key type LIVE of 1000 requests per 60 seconds")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert client.get("/v2/notifications", headers=tenant.test).status_code == 200, \
        "the limit is per key"


def test_a_test_key_counts_against_the_per_minute_limit(notify, client):
    tenant = new_tenant(notify, rate_limit_per_minute=1000)
    fill(notify, "key-minute", key_id(notify, tenant.id, "test"), 1000)
    r = client.get("/api/templates", headers=tenant.test)
    assert errors(r)[:2] == (429, "RateLimitError") and "TEST" in errors(r)[2]


def send(client, headers, template_id):
    return client.post("/v2/notifications/sms", headers=headers, json={
        "phone_number": "07700900111", "template_id": template_id,
        "personalisation": {"name": "Dai", "bin type": "du"}})


def test_past_the_daily_limit_a_send_is_refused_and_not_stored(notify, client, sms_template,
                                                                tenant):
    client.patch(f"/admin/tenants/{tenant.id}", json={"daily_message_limit": 2},
                 headers={"Authorization": f"Bearer {notify.runtime.settings.admin_token}"})
    assert [send(client, tenant.live, sms_template["id"]).status_code for _ in range(2)] == \
        [201, 201]
    r = send(client, tenant.live, sms_template["id"])
    assert errors(r) == (429, "TooManyRequestsError", "Exceeded send limits (2) for today")
    assert int(r.headers["Retry-After"]) > 0
    with notify.runtime.db.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 2


def test_test_key_sends_never_count_against_the_daily_limit(notify, client, sms_template,
                                                            tenant):
    fill(notify, "tenant-day", tenant.id, 250_000)
    assert send(client, tenant.test, sms_template["id"]).status_code == 201
    assert send(client, tenant.live, sms_template["id"]).status_code == 429


def test_a_refused_send_does_not_use_up_the_days_allowance(notify):
    now = utc("2026-01-14 10:00")
    with notify.runtime.db.transaction() as session:
        limits.take_daily(session, tenant_id="t", key_type="live", per_day=5, count=5, now=now)
    with pytest.raises(TooManyRequestsError), notify.runtime.db.transaction() as session:
        limits.take_daily(session, tenant_id="t", key_type="live", per_day=5, count=1, now=now)
    with notify.runtime.db.read() as session:
        assert limits.remaining_today(session, tenant_id="t", per_day=6, now=now) == 1


def test_a_count_taken_only_if_there_is_room_leaves_a_full_day_as_it_was(notify):
    now = utc("2026-01-14 10:00")
    with notify.runtime.db.transaction(durable=False) as session:
        for _ in range(3):
            limits.take_daily_if_room(session, tenant_id="t", key_type="live", per_day=3,
                                      count=1, now=now)
    with pytest.raises(TooManyRequestsError), \
            notify.runtime.db.transaction(durable=False) as session:
        limits.take_daily_if_room(session, tenant_id="t", key_type="live", per_day=3, count=1,
                                  now=now)
    with pytest.raises(TooManyRequestsError), \
            notify.runtime.db.transaction(durable=False) as session:
        limits.take_daily_if_room(session, tenant_id="u", key_type="live", per_day=3, count=4,
                                  now=now)
    with notify.runtime.db.read() as session:
        assert limits.remaining_today(session, tenant_id="t", per_day=3, now=now) == 0
        assert limits.remaining_today(session, tenant_id="u", per_day=3, now=now) == 3


def test_a_send_refused_after_it_was_counted_hands_its_count_back(notify, client, sms_template,
                                                                 tenant):
    client.patch(f"/admin/tenants/{tenant.id}", json={"daily_message_limit": 1},
                 headers={"Authorization": f"Bearer {notify.runtime.settings.admin_token}"})
    missing = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": sms_template["id"]})
    assert errors(missing)[:2] == (400, "BadRequestError")
    bad_number = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "0770", "template_id": sms_template["id"],
        "personalisation": {"name": "Dai", "bin type": "du"}})
    assert errors(bad_number)[:2] == (400, "ValidationError")
    # neither used the day's one message
    assert send(client, tenant.live, sms_template["id"]).status_code == 201
    assert errors(send(client, tenant.live, sms_template["id"]))[0] == 429


def test_a_send_refused_for_the_daily_limit_still_counts_as_a_request(notify, client,
                                                                       sms_template, tenant):
    client.patch(f"/admin/tenants/{tenant.id}",
                 json={"daily_message_limit": 1, "rate_limit_per_minute": 3},
                 headers={"Authorization": f"Bearer {notify.runtime.settings.admin_token}"})
    notify.clock = lambda: utc("2026-01-14 10:00:10")      # one minute for the v2 calls
    assert send(client, tenant.live, sms_template["id"]).status_code == 201
    assert errors(send(client, tenant.live, sms_template["id"]))[0] == 429
    assert client.get("/v2/notifications", headers=tenant.live).status_code == 200
    assert errors(client.get("/v2/notifications", headers=tenant.live))[:2] == \
        (429, "RateLimitError"), "the refused send was the minute's second request"
