"""The HTTP client for the scheduler's internal API, against a local stand-in for it."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
from http_fakes import FakeEndpoint

from services.inbound.scheduler_client import (
    FOUND,
    UNAVAILABLE,
    UNKNOWN,
    HttpScheduler,
    next_collection_of,
)

TENANT = "0b7e5a52-3c55-4c1c-9c1e-2f9d1f6b8a10"
PHONE = "+447700900123"
ANSWER = {"phone": PHONE, "next_collection": {
    "date": "2026-12-01", "round": "A", "description": {"cy": "ailgylchu", "en": "recycling"}}}


@pytest.fixture
def scheduler():
    fake = FakeEndpoint(body=lambda _r: json.dumps(ANSWER).encode())
    yield fake
    fake.close()


def client(fake: FakeEndpoint, timeout: float = 2.0) -> HttpScheduler:
    return HttpScheduler(fake.url, "admin-token", requests.Session(), timeout=timeout)


def test_it_asks_for_the_phone_with_the_platform_token_and_reads_the_date(scheduler):
    lookup = client(scheduler).next_collection(TENANT, PHONE)

    assert lookup.outcome == FOUND
    collection = next_collection_of(lookup)
    assert (collection.date, collection.round, collection.description["cy"]) == (
        dt.date(2026, 12, 1), "A", "ailgylchu")
    [asked] = scheduler.received
    assert asked.path == f"/internal/tenants/{TENANT}/next-collection?phone=%2B447700900123"
    assert asked.headers["Authorization"] == "Bearer admin-token"


def test_no_collection_booked_is_found_with_none(scheduler):
    scheduler.body = lambda _r: b'{"phone": "+447700900123", "next_collection": null}'
    lookup = client(scheduler).next_collection(TENANT, PHONE)
    assert lookup.outcome == FOUND and next_collection_of(lookup) is None


def test_a_404_means_the_number_is_no_subscriber_s(scheduler):
    scheduler.statuses = [404]
    assert client(scheduler).next_collection(TENANT, PHONE).outcome == UNKNOWN


@pytest.mark.parametrize("status, body", [
    (500, b"{}"), (503, b"{}"), (200, b"not json"), (200, b'{"next_collection": {"date": 5}}'),
    (200, b"[]"),
])
def test_errors_and_answers_outside_the_contract_are_unavailable(scheduler, status, body):
    scheduler.statuses, scheduler.body = [status], (lambda _r: body)
    assert client(scheduler).next_collection(TENANT, PHONE).outcome == UNAVAILABLE


def test_a_scheduler_slower_than_the_timeout_is_unavailable(scheduler):
    scheduler.delay = 0.5
    assert client(scheduler, timeout=0.05).next_collection(TENANT, PHONE).outcome == UNAVAILABLE


def test_a_scheduler_that_is_not_there_is_unavailable():
    gone = FakeEndpoint()
    gone.close()
    assert client(gone).next_collection(TENANT, PHONE).outcome == UNAVAILABLE


def test_the_subscriber_s_attributes_are_read(scheduler):
    scheduler.body = lambda _r: b'{"phone": "+447700900123", "attributes": {"uprn": "100"}}'
    lookup = client(scheduler).subscriber(TENANT, PHONE)
    assert (lookup.outcome, lookup.data["attributes"]) == (FOUND, {"uprn": "100"})
    assert scheduler.received[0].path.startswith(f"/internal/tenants/{TENANT}/subscribers?")


def test_the_citizen_look_up_reads_the_language_and_live_appointments(scheduler):
    from services.inbound.scheduler_client import bookings_of, recorded_language

    scheduler.body = lambda _r: json.dumps({"phone": PHONE, "language": "en", "appointments": [
        {"id": "a-1", "external_reference": "RENAL-1001", "reply_code": "4821",
         "status": "booked", "starts_at": "2026-12-10T09:30:00+00:00", "language": "en",
         "ward": "3"}]}).encode()
    lookup = client(scheduler).citizen(TENANT, PHONE)
    assert recorded_language(lookup) == "en"
    [booking] = bookings_of(lookup)
    assert (booking.id, booking.external_reference, booking.reply_code, booking.starts_at) == (
        "a-1", "RENAL-1001", "4821", dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC))
    [asked] = scheduler.received
    assert asked.path == f"/internal/tenants/{TENANT}/citizens?phone=%2B447700900123"


@pytest.mark.parametrize("body", [b"not json", b'{"appointments": [{"id": "x"}]}',
                                  b'{"language": 7}'])
def test_a_citizen_answer_off_the_contract_is_unavailable_and_names_no_appointments(
        scheduler, body):
    from services.inbound.scheduler_client import bookings_of

    scheduler.body = lambda _r: body
    lookup = client(scheduler).citizen(TENANT, PHONE)
    assert lookup.outcome == UNAVAILABLE and bookings_of(lookup) is None
