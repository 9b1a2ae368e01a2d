"""Each tenant's daily figures: rolled up, kept after the purge, published as JSON and CSV."""
from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest
import sqlalchemy as sa
from ops_support import add_notifications, add_opt_out, add_reply, add_tenant

from services.notify import opendata
from services.notify import retention as notify_retention
from services.notify.models import Notification
from shared import events
from shared.db import utcnow
from shared.events import Event

DAY = dt.date(2026, 11, 20)
NOON = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def figures_of(svc, tenant, day=DAY) -> opendata.DailyFigures | None:
    with svc.runtime.db.read() as session:
        return session.get(opendata.DailyFigures, (tenant.id, day))


@pytest.fixture
def busy_day(notify):
    """One tenant's 20 November: sends of every outcome, a test-key send, replies, an opt-out."""
    tenant = add_tenant(notify, "pembrokeshire")
    for status, n in (("delivered", 6), ("sent", 1), ("permanent-failure", 1),
                      ("temporary-failure", 1), ("technical-failure", 1), ("suppressed", 2)):
        add_notifications(notify, tenant, status, n, created_at=NOON)
    add_notifications(notify, tenant, "delivered", 5, created_at=NOON, key_type="test")
    add_reply(notify, tenant, NOON)
    add_reply(notify, tenant, NOON)
    add_opt_out(notify, tenant, NOON)
    return tenant


def test_a_day_is_rolled_up_from_its_rows_leaving_out_test_keys(notify, busy_day):
    opendata.roll_up(notify.runtime.db, now=NOON + dt.timedelta(days=1))
    f = figures_of(notify, busy_day)
    assert (f.requested, f.sent, f.delivered, f.failed, f.suppressed) == (12, 9, 6, 3, 2)
    assert (f.opt_outs, f.replies, f.final) == (1, 2, False)


def test_the_figures_outlive_the_rows_they_were_counted_from(notify, busy_day):
    notify_retention.run_once(notify.runtime.db, now=NOON + dt.timedelta(days=9))
    with notify.runtime.db.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0
    f = figures_of(notify, busy_day)
    assert (f.requested, f.delivered, f.final) == (12, 6, True)
    opendata.roll_up(notify.runtime.db, now=NOON + dt.timedelta(days=10))
    assert figures_of(notify, busy_day).requested == 12   # sealed: never recounted from nothing


def test_receipts_arriving_before_the_purge_still_count(notify, busy_day):
    opendata.roll_up(notify.runtime.db, now=NOON + dt.timedelta(days=1))
    with notify.runtime.db.transaction() as session:
        session.execute(sa.update(Notification).where(Notification.status == "sent")
                        .values(status="delivered"))
    opendata.roll_up(notify.runtime.db, now=NOON + dt.timedelta(days=2))
    assert figures_of(notify, busy_day).delivered == 7


def test_today_is_not_published_until_it_is_over(notify, busy_day):
    opendata.roll_up(notify.runtime.db, now=NOON)
    assert figures_of(notify, busy_day) is None


def deliver(handler, event: Event, notify) -> None:
    with notify.runtime.db.transaction() as session:
        handler(Event.from_json(event.to_json()), session)


def reply_event(tenant, keyword):
    return events.make("inbound.message.received", tenant.id, message_id=str(uuid.uuid4()),
                       provider_reference="SM1", from_number="+447700900123",
                       to_number="+447700900999", body="whatever", received_at=NOON,
                       keyword=keyword)


def test_replies_answered_by_a_keyword_are_counted_as_needing_no_person(notify, busy_day):
    for keyword in ("stop", "missed", None, "question"):
        deliver(opendata.count_reply, reply_event(busy_day, keyword), notify)
    opendata.roll_up(notify.runtime.db, now=NOON + dt.timedelta(days=1))
    f = figures_of(notify, busy_day)
    assert (f.replies_automated, f.replies) == (2, 2)


def test_service_requests_are_counted_on_the_day_they_were_made(notify, busy_day):
    event = events.make("service_request.created", busy_day.id, request_id=str(busy_day.id),
                        reference="MC-1", service_code="missed-collection", status="open")
    deliver(opendata.count_service_request, event, notify)
    today = opendata.retention.local_day(utcnow())
    assert figures_of(notify, busy_day, today).service_requests == 1


def test_the_json_is_public_and_carries_no_ids_or_personal_data(notify, busy_day, client):
    opendata.roll_up(notify.runtime.db, now=NOON + dt.timedelta(days=1))
    resp = client.get("/open-data/daily.json?from=2026-11-01&to=2026-11-24")
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    (row,) = resp.json["data"]
    assert row == {"date": "2026-11-20", "tenant": "pembrokeshire", "requested": 12, "sent": 9,
                   "delivered": 6, "delivered_rate": 0.6667, "failed": 3, "suppressed": 2,
                   "opt_outs": 1, "replies": 2, "replies_answered_automatically": 0,
                   "share_answered_automatically": 0.0, "service_requests": 0, "final": False}
    body = resp.get_data(as_text=True)
    assert busy_day.id not in body and "+4477" not in body
    assert resp.json["licence"] == "Open Government Licence v3.0"


def test_the_csv_has_a_header_row_and_one_row_per_tenant_and_day(notify, busy_day, client):
    other = add_tenant(notify, "swansea-bay")
    add_notifications(notify, other, "delivered", 2, created_at=NOON)
    opendata.roll_up(notify.runtime.db, now=NOON + dt.timedelta(days=1))
    resp = client.get("/open-data/daily.csv?from=2026-11-20&to=2026-11-20&tenant=swansea-bay")
    assert resp.content_type == "text/csv; charset=utf-8"
    assert 'filename="hysbys-daily-2026-11-20-2026-11-20.csv"' in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert list(rows[0]) == list(opendata.COLUMNS)
    assert [(r["tenant"], r["delivered"], r["delivered_rate"], r["final"]) for r in rows] == [
        ("swansea-bay", "2", "1.0", "false")]


@pytest.mark.parametrize(("query", "message"), [
    ("from=20-11-2026", "from must be a date in the form YYYY-MM-DD, got '20-11-2026'"),
    ("to=tomorrow", "to must be a date in the form YYYY-MM-DD, got 'tomorrow'"),
    ("from=2026-11-10&to=2026-11-01", "from must not be after to"),
    ("from=2024-01-01&to=2026-01-01", "from and to may be at most 366 days apart"),
])
def test_bad_dates_are_a_400_naming_the_parameter(client, query, message):
    resp = client.get(f"/open-data/daily.json?{query}")
    assert resp.status_code == 400
    assert resp.json == {"status_code": 400,
                         "errors": [{"error": "ValidationError", "message": message}]}


def test_an_unknown_tenant_is_a_404(client):
    resp = client.get("/open-data/daily.csv?tenant=atlantis")
    assert resp.status_code == 404
    assert resp.json["errors"][0]["message"] == "tenant 'atlantis' not found"
