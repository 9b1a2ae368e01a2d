"""Erasing a subscriber (a citizen's right to erasure, UK GDPR art. 17):
``DELETE /api/subscribers/<id>`` removes the tenant's row, another tenant's id is the
same 404 as an unknown one, and a reminder already planned never reaches them."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from services.scheduler.models import Occurrence, Subscriber
from services.scheduler.recurrence import LONDON
from services.scheduler.ticker import Ticker
from shared import pii

TEMPLATE_ID = str(uuid.uuid4())


def at(text: str) -> dt.datetime:
    """A London wall time as a UTC instant."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=LONDON).astimezone(dt.UTC)


@pytest.fixture
def tenant(new_tenant):
    return new_tenant("penfro")


def add(client, tenant, *rows: dict) -> list[str]:
    """Subscribe ``rows`` (each with a phone); their ids, in the order given."""
    resp = client.post("/api/subscribers", headers=tenant.headers(), json=list(rows))
    assert resp.status_code == 201 and resp.get_json()["errors"] == [], resp.get_json()
    return [subscriber_id(client, tenant, row["phone"]) for row in rows]


def subscriber_id(client, tenant, number: str) -> str:
    [found] = client.get("/api/subscribers", headers=tenant.headers(),
                         query_string={"phone": number}).get_json()["subscribers"]
    return found["id"]


def listed(client, tenant) -> set[str]:
    return {s["id"] for s in client.get("/api/subscribers",
                                        headers=tenant.headers()).get_json()["subscribers"]}


def erase(client, tenant, sid: str):
    return client.delete(f"/api/subscribers/{sid}", headers=tenant.headers())


def test_an_erased_subscriber_is_gone_and_the_others_stay(scheduler, client, tenant):
    gone, kept = add(client, tenant, {"phone": "07700900001", "language": "cy",
                                      "attributes": {"round": "A", "uprn": "1001"}},
                     {"phone": "07700900002"})
    resp = erase(client, tenant, gone)
    assert resp.status_code == 204
    assert resp.get_data() == b""
    assert listed(client, tenant) == {kept}
    # the row itself, with the number and attributes, not merely hidden
    with scheduler.runtime.db.read() as session:
        assert session.get(Subscriber, gone) is None
        assert session.scalar(sa.select(sa.func.count()).select_from(Subscriber).where(
            Subscriber.phone_hash == pii.lookup_hash(session, "+447700900001"))) == 0


def test_erasing_twice_is_a_404_the_second_time(client, tenant, error_messages):
    [sid] = add(client, tenant, {"phone": "07700900001"})
    assert erase(client, tenant, sid).status_code == 204
    again = erase(client, tenant, sid)
    assert again.status_code == 404
    assert again.get_json()["errors"][0]["error"] == "NoResultFound"
    assert error_messages(again)


def test_the_id_is_read_in_any_uuid_spelling(client, tenant):
    [sid] = add(client, tenant, {"phone": "07700900001"})
    assert erase(client, tenant, sid.upper()).status_code == 204
    assert listed(client, tenant) == set()


def test_another_tenants_subscriber_is_the_same_404_as_an_unknown_id_and_stays(
        client, tenant, new_tenant):
    other = new_tenant("ceredigion")
    [theirs] = add(client, other, {"phone": "07700900009"})
    asked = erase(client, tenant, theirs)
    unknown = erase(client, tenant, str(uuid.uuid4()))
    assert asked.status_code == unknown.status_code == 404
    assert asked.get_data() == unknown.get_data()
    assert listed(client, other) == {theirs}


@pytest.mark.parametrize("bad", ["not-a-uuid", "12345", "upload",
                                 "6f1c1f4e-56a8-4b8a-9d0c-3d5b3c3b1a1"])
def test_a_malformed_id_is_a_400_naming_the_field(client, tenant, error_messages, bad):
    [sid] = add(client, tenant, {"phone": "07700900001"})
    resp = erase(client, tenant, bad)
    assert resp.status_code == 400
    assert error_messages(resp) == ["subscriber_id is not a valid UUID"]
    assert listed(client, tenant) == {sid}


def test_without_a_token_nothing_is_erased(client, tenant):
    [sid] = add(client, tenant, {"phone": "07700900001"})
    assert client.delete(f"/api/subscribers/{sid}").status_code == 401
    assert listed(client, tenant) == {sid}


def test_the_openapi_document_describes_the_erasure(client):
    operation = client.get("/openapi.json").get_json()["paths"][
        "/api/subscribers/{subscriber_id}"]["delete"]
    assert {"204", "400", "404"} <= set(operation["responses"])
    assert operation["security"] == [{"bearer": []}]


# -- a reminder already planned ------------------------------------------------------

def bin_evening(client, tenant) -> str:
    """Round A (fortnightly Tuesdays from 6 January 2099) and a collection campaign
    reminding at 18:00 the evening before; the campaign's id."""
    resp = client.post("/api/rounds", headers=tenant.headers(), json={
        "code": "A", "name": "Round A", "rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
        "start": "2099-01-06", "description": {"cy": "bagiau du", "en": "black bags"}})
    assert resp.status_code == 201, resp.get_json()
    resp = client.post("/api/campaigns", headers=tenant.headers(), json={
        "name": "Bin reminders", "kind": "collection", "template_id": TEMPLATE_ID,
        "channel": "sms", "schedule": {"days_before": 1, "at": "18:00"}})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def evening(scheduler, campaign_id: str) -> Occurrence:
    with scheduler.runtime.db.read() as session:
        return session.scalars(sa.select(Occurrence).where(
            Occurrence.campaign_id == campaign_id,
            Occurrence.occurrence_key == "A:2099-01-06")).one()


def test_a_subscriber_erased_after_the_evening_was_planned_is_not_reminded(
        scheduler, client, tenant, outbox_events):
    gone, kept = add(client, tenant, {"phone": "07700900001", "attributes": {"round": "A"}},
                     {"phone": "07700900002", "attributes": {"round": "A"}})
    cid = bin_evening(client, tenant)
    ticker = Ticker(scheduler.runtime.db)
    ticker.plan_ahead(at("2099-01-01T12:00"), force=True)
    assert evening(scheduler, cid).audience_size == 2     # planned with both of them

    assert erase(client, tenant, gone).status_code == 204
    assert ticker.run_once(now=at("2099-01-05T18:00")) == 1
    sent = [e["data"] for e in outbox_events("notification.requested")]
    assert [s["recipient"] for s in sent] == ["+447700900002"]
    done = evening(scheduler, cid)
    assert (done.status, done.requested) == ("completed", 1)
    assert kept in listed(client, tenant)


def test_an_erasure_in_the_middle_of_an_evening_stops_the_reminders_not_yet_written(
        scheduler, client, tenant, outbox_events):
    """Batches of one: after the first is written, the first subscriber (the occurrence's
    cursor now points at their id) and the next are erased; the third is still reminded."""
    ids = add(client, tenant, *({"phone": f"0770090000{n}", "attributes": {"round": "A"}}
                                for n in (1, 2, 3)))
    numbers = dict(zip(ids, ("+447700900001", "+447700900002", "+447700900003"), strict=True))
    first, second, third = sorted(ids)                    # the order the ticker walks them
    cid = bin_evening(client, tenant)
    erased: list[int] = []

    def after_a_batch() -> None:
        if not erased:
            erased.extend(erase(client, tenant, sid).status_code for sid in (first, second))

    ticker = Ticker(scheduler.runtime.db, batch=1, on_outbox=after_a_batch)
    ticker.plan_ahead(at("2099-01-01T12:00"), force=True)
    assert ticker.run_once(now=at("2099-01-05T18:00")) == 2
    assert erased == [204, 204]
    sent = [e["data"]["recipient"] for e in outbox_events("notification.requested")]
    assert sent == [numbers[first], numbers[third]]
    done = evening(scheduler, cid)
    assert (done.status, done.requested) == ("completed", 2)
