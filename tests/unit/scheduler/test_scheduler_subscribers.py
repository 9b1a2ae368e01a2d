"""Subscribers: added by JSON, one person one row, bad rows reported and good rows kept."""
from __future__ import annotations

import sqlalchemy as sa

from services.scheduler.models import Subscriber
from shared import events


def rows(scheduler, tenant_id: str) -> list[Subscriber]:
    with scheduler.runtime.db.read() as session:
        return list(session.scalars(sa.select(Subscriber).where(
            Subscriber.tenant_id == tenant_id).order_by(Subscriber.created_at)))


def test_a_list_of_subscribers_is_stored_with_numbers_in_e164_and_emails_lower_cased(
        scheduler, client, new_tenant):
    t = new_tenant("penfro")
    resp = client.post("/api/subscribers", headers=t.headers(), json=[
        {"phone": "07700 900123", "language": "cy", "attributes": {"round": "A", "uprn": 1001}},
        {"email": "Sian@Example.CYMRU", "language": "en"},
    ])
    assert resp.status_code == 201
    assert resp.get_json() == {"created": 2, "updated": 0, "errors": []}
    stored = {(s.phone, s.email, s.language) for s in rows(scheduler, t.id)}
    assert stored == {("+447700900123", None, "cy"), (None, "sian@example.cymru", "en")}


def test_posting_the_same_phone_again_updates_the_subscriber_instead_of_adding_one(
        scheduler, client, new_tenant):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(),
                json={"phone": "07700900123", "attributes": {"round": "A", "uprn": "1001"}})
    resp = client.post("/api/subscribers", headers=t.headers(),
                       json={"phone": "+44 7700 900123", "language": "en",
                             "attributes": {"round": "B"}})
    assert resp.get_json() == {"created": 0, "updated": 1, "errors": []}
    [only] = rows(scheduler, t.id)
    assert only.language == "en"
    assert only.attributes == {"round": "B", "uprn": "1001"}


def test_a_repost_without_a_language_keeps_the_language_already_known(
        scheduler, client, new_tenant):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(), json={"phone": "07700900123",
                                                                "language": "cy"})
    client.post("/api/subscribers", headers=t.headers(), json={"phone": "07700900123"})
    assert rows(scheduler, t.id)[0].language == "cy"


def test_the_same_person_twice_in_one_upload_is_one_subscriber(scheduler, client, new_tenant):
    t = new_tenant("penfro")
    resp = client.post("/api/subscribers", headers=t.headers(), json=[
        {"phone": "07700900123"}, {"phone": "07700900123", "email": "a@example.com"}])
    assert resp.get_json() == {"created": 1, "updated": 1, "errors": []}
    [only] = rows(scheduler, t.id)
    assert (only.phone, only.email) == ("+447700900123", "a@example.com")


def test_bad_rows_are_reported_by_index_and_the_good_rows_are_kept(scheduler, client, new_tenant):
    t = new_tenant("penfro")
    resp = client.post("/api/subscribers", headers=t.headers(), json=[
        {"phone": "07700900111"},
        {"phone": "12"},
        {"language": "cy"},
        {"email": "not-an-address"},
        {"phone": "07700900222", "language": "fr"},
        {"phone": "07700900222", "colour": "blue"},
        "07700900333",
        {"phone": "07700900444", "attributes": {"address": {"line1": "1 Stryd Fawr"}}},
    ])
    assert resp.status_code == 201
    body = resp.get_json()
    assert (body["created"], body["updated"]) == (1, 0)
    reasons = {e["index"]: e["reason"] for e in body["errors"]}
    assert set(reasons) == {1, 2, 3, 4, 5, 6, 7}
    assert reasons[1].startswith("phone Not a valid phone number")
    assert "phone" in reasons[2]
    assert reasons[3].startswith("email")
    assert reasons[4].startswith("language")
    assert "colour" in reasons[5]
    assert "object" in reasons[6]
    assert reasons[7].startswith("attributes")
    assert [s.phone for s in rows(scheduler, t.id)] == ["+447700900111"]


def test_a_phone_and_an_email_of_two_different_subscribers_is_a_row_error(
        scheduler, client, new_tenant):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(),
                json=[{"phone": "07700900111"}, {"email": "b@example.com"}])
    resp = client.post("/api/subscribers", headers=t.headers(),
                       json=[{"phone": "07700900111", "email": "b@example.com"}])
    assert resp.get_json()["errors"] == [
        {"index": 0, "reason": "phone and email belong to two different subscribers"}]
    assert len(rows(scheduler, t.id)) == 2


def test_one_bad_subscriber_posted_on_its_own_is_a_400_naming_the_field(
        client, new_tenant, error_messages):
    t = new_tenant("penfro")
    resp = client.post("/api/subscribers", headers=t.headers(), json={"phone": "12"})
    assert resp.status_code == 400
    [message] = error_messages(resp)
    assert message.startswith("phone Not a valid phone number")


def test_an_upload_never_clears_an_opt_out(scheduler, client, new_tenant, deliver):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(), json={"phone": "07700900123"})
    deliver(events.make("subscriber.opted_out", t.id, recipient="+447700900123"))
    client.post("/api/subscribers", headers=t.headers(),
                json={"phone": "07700900123", "attributes": {"round": "C"}})
    assert rows(scheduler, t.id)[0].opted_out is True


def test_subscribers_are_listed_newest_first_a_page_at_a_time_and_only_the_tenants_own(
        client, new_tenant):
    penfro, caerdydd = new_tenant("penfro"), new_tenant("caerdydd")
    client.post("/api/subscribers", headers=penfro.headers(),
                json=[{"phone": f"0770090010{i}"} for i in range(3)])
    client.post("/api/subscribers", headers=caerdydd.headers(), json={"phone": "07700900999"})
    first = client.get("/api/subscribers?page_size=2", headers=penfro.headers()).get_json()
    assert len(first["subscribers"]) == 2 and "next" in first["links"]
    second = client.get(first["links"]["next"], headers=penfro.headers()).get_json()
    phones = [s["phone"] for s in first["subscribers"] + second["subscribers"]]
    assert sorted(phones) == [f"+44770090010{i}" for i in range(3)]
    assert "next" not in second["links"]


def test_a_subscriber_can_be_looked_up_by_phone_written_any_way(client, new_tenant):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(),
                json=[{"phone": "07700900123"}, {"phone": "07700900456"}])
    found = client.get("/api/subscribers?phone=07700%20900123", headers=t.headers()).get_json()
    assert [s["phone"] for s in found["subscribers"]] == ["+447700900123"]


def test_calls_without_a_token_are_401(client):
    assert client.get("/api/subscribers").status_code == 401
    assert client.post("/api/subscribers", json={"phone": "07700900123"}).status_code == 401
