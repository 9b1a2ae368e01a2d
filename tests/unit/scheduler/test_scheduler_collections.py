"""Collection rounds over HTTP: the calendar, reminders planned lazily per round and date,
personalisation from the round, holiday changes, and the answer to "when is my next one?"."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from services.scheduler.models import Campaign, Occurrence
from services.scheduler.planner import HORIZON
from services.scheduler.recurrence import LONDON
from services.scheduler.ticker import Ticker

TEMPLATE_ID = str(uuid.uuid4())
ADMIN = {"Authorization": "Bearer test-admin-token"}


def at(text: str) -> dt.datetime:
    """A London wall time as a UTC instant."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=LONDON).astimezone(dt.UTC)


@pytest.fixture
def tenant(new_tenant):
    return new_tenant("penfro")


@pytest.fixture
def round_(client, tenant):
    def _round(code: str = "A", **overrides) -> dict:
        body = {"code": code, "name": f"Round {code}", "rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
                "start": "2099-01-06", "description": {"cy": "bagiau du", "en": "black bags"}}
        body.update(overrides)
        resp = client.post("/api/rounds", headers=tenant.headers(), json=body)
        assert resp.status_code in (200, 201), resp.get_json()
        return resp.get_json()
    return _round


def collection(client, tenant, **overrides):
    body = {"name": "Bin reminders", "kind": "collection", "template_id": TEMPLATE_ID,
            "channel": "sms", "schedule": {"days_before": 1, "at": "18:00"}}
    body.update(overrides)
    return client.post("/api/campaigns", headers=tenant.headers(), json=body)


def occurrences(scheduler, campaign_id: str) -> list[Occurrence]:
    with scheduler.runtime.db.read() as session:
        return list(session.scalars(sa.select(Occurrence).where(
            Occurrence.campaign_id == campaign_id).order_by(Occurrence.due_at,
                                                            Occurrence.occurrence_key)))


def test_a_round_answers_with_its_next_collection_dates(round_):
    body = round_(exdates=["2099-01-20"], moves=[{"from": "2099-02-03", "to": "2099-02-04"}])
    assert [(u["date"], u["moved_from"]) for u in body["upcoming"]][:3] == [
        ("2099-01-06", None), ("2099-02-04", "2099-02-03"), ("2099-02-17", None)]
    assert body["warnings"] == []


@pytest.mark.parametrize("change, field", [
    ({"rrule": "FREQ=HOURLY"}, "rrule"),
    ({"rrule": "FREQ=WEEKLY;BYHOUR=7"}, "rrule"),
    ({"rrule": "every other tuesday"}, "rrule"),
    ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "rrule"),
    ({"rrule": "FREQ=WEEKLY;UNTIL=20200101"}, "rrule"),
    ({"start": "next week"}, "start"),
    ({"code": ""}, "code"),
    ({"moves": [{"from": "2099-01-06"}]}, "moves.0.to"),
    ({"exdates": ["25/12/2099"]}, "exdates.0"),
])
def test_a_bad_round_is_a_400_that_names_the_field(client, tenant, error_messages, change,
                                                   field):
    body = {"code": "A", "rrule": "FREQ=WEEKLY", "start": "2099-01-06", **change}
    resp = client.post("/api/rounds", headers=tenant.headers(), json=body)
    assert resp.status_code == 400
    assert any(field in m for m in error_messages(resp)), error_messages(resp)


def test_a_collection_campaign_plans_reminders_only_a_horizon_ahead_per_round_and_date(
        scheduler, client, tenant, round_):
    round_("A")
    round_("B", rrule="FREQ=WEEKLY;BYDAY=WE", start="2099-01-07")
    resp = collection(client, tenant)
    assert resp.status_code == 201, resp.get_json()
    keys = [o.occurrence_key for o in occurrences(scheduler, resp.get_json()["id"])]
    # created "now" (years before 2099): nothing within the horizon yet
    assert keys == []
    ticker = Ticker(scheduler.runtime.db)
    ticker.plan_ahead(at("2099-01-01T12:00"), force=True)
    keys = [o.occurrence_key for o in occurrences(scheduler, resp.get_json()["id"])]
    assert keys == ["A:2099-01-06", "B:2099-01-07", "B:2099-01-14"]
    assert all(at("2099-01-01T12:00") < o.due_at <= at("2099-01-01T12:00") + HORIZON
               for o in occurrences(scheduler, resp.get_json()["id"]))
    # planning again later adds only what is new, never a second copy
    ticker.plan_ahead(at("2099-01-08T12:00"), force=True)
    keys = [o.occurrence_key for o in occurrences(scheduler, resp.get_json()["id"])]
    assert keys == ["A:2099-01-06", "B:2099-01-07", "B:2099-01-14", "A:2099-01-20",
                    "B:2099-01-21"]


def test_each_round_reminds_its_own_households_at_six_the_evening_before_with_its_facts(
        scheduler, client, tenant, round_, outbox_events):
    round_("A")
    round_("B", rrule="FREQ=WEEKLY;BYDAY=WE", start="2099-01-07")
    client.post("/api/subscribers", headers=tenant.headers(), json=[
        {"phone": "07700900001", "language": "cy", "attributes": {"round": "A"}},
        {"phone": "07700900002", "language": "en", "attributes": {"round": "B"}},
        {"phone": "07700900003", "attributes": {"round": "C"}}])
    cid = collection(client, tenant, personalisation={"council": "Sir Benfro"}).get_json()["id"]
    ticker = Ticker(scheduler.runtime.db)
    ticker.plan_ahead(at("2099-01-01T12:00"), force=True)
    assert ticker.run_once(now=at("2099-01-05T17:59")) == 0
    assert ticker.run_once(now=at("2099-01-05T18:00")) == 1
    [sent] = [e["data"] for e in outbox_events("notification.requested")]
    assert (sent["recipient"], sent["occurrence_key"], sent["campaign_id"]) == (
        "+447700900001", "A:2099-01-06", cid)
    p = sent["personalisation"]
    assert (p["council"], p["round"], p["bins_cy"], p["bins_en"]) == (
        "Sir Benfro", "A", "bagiau du", "black bags")
    assert (p["collection_date"], p["collection_date_cy"], p["collection_date_en"]) == (
        "2099-01-06", "dydd Mawrth 6 Ionawr", "Tuesday 6 January")
    assert p["collection_moved"] is False
    assert ticker.run_once(now=at("2099-01-06T18:00")) == 1
    assert [e["data"]["recipient"] for e in outbox_events("notification.requested")][1] == \
        "+447700900002"


def test_a_christmas_change_list_moves_the_reminders_not_yet_sent(
        scheduler, client, tenant, round_, outbox_events):
    round_("A", rrule="FREQ=WEEKLY;BYDAY=TH", start="2099-12-03")
    round_("B", rrule="FREQ=WEEKLY;BYDAY=FR", start="2099-12-04")
    client.post("/api/subscribers", headers=tenant.headers(),
                json=[{"phone": "07700900001", "attributes": {"round": "A"}}])
    cid = collection(client, tenant).get_json()["id"]
    ticker = Ticker(scheduler.runtime.db)
    ticker.plan_ahead(at("2099-12-15T12:00"), force=True)
    assert "A:2099-12-24" in [o.occurrence_key for o in occurrences(scheduler, cid)]
    resp = client.post("/api/rounds/changes", headers=tenant.headers(), json={"changes": [
        {"from": "2099-12-24", "to": "2099-12-27"},     # Christmas Eve (Thursday) to Sunday
        {"from": "2099-12-25", "to": None},              # Christmas Day (Friday): no collection
        {"from": "2099-12-26", "to": "2099-12-28"}]})    # a Saturday: nobody collects then
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert [(a["from"], a["rounds"]) for a in body["applied"]] == [
        ("2099-12-24", ["A"]), ("2099-12-25", ["B"])]
    assert body["errors"] == [{"index": 2, "reason": "no round collects on 2099-12-26"}]
    ticker.plan_ahead(at("2099-12-15T12:01"), force=True)    # the next tick plans again
    keys = [o.occurrence_key for o in occurrences(scheduler, cid)]
    assert "A:2099-12-24" not in keys and "A:2099-12-27" in keys and "B:2099-12-25" not in keys
    ticker.run_once(now=at("2099-12-26T18:00"))
    [sent] = [e["data"] for e in outbox_events("notification.requested")]
    assert sent["personalisation"]["collection_date"] == "2099-12-27"
    assert sent["personalisation"]["collection_moved"] is True
    assert sent["personalisation"]["usual_date"] == "2099-12-24"


def test_naming_a_round_that_does_not_exist_is_a_400(client, tenant, error_messages):
    resp = collection(client, tenant, schedule={"rounds": ["Z"]})
    assert resp.status_code == 400
    assert "schedule.rounds" in error_messages(resp)[0]


@pytest.mark.parametrize("schedule, field", [
    ({"at": "25:00"}, "schedule.at"),
    ({"days_before": -1}, "schedule.days_before"),
    ({"offsets": []}, "schedule.offsets"),
])
def test_a_bad_schedule_is_a_400_naming_the_field(client, tenant, error_messages, schedule,
                                                  field):
    resp = collection(client, tenant, schedule=schedule)
    assert resp.status_code == 400
    assert any(field in m for m in error_messages(resp)), error_messages(resp)


def test_a_collection_campaign_may_not_have_a_send_at(client, tenant, error_messages):
    resp = collection(client, tenant, send_at="2099-01-01T18:00:00+00:00")
    assert resp.status_code == 400 and "send_at" in error_messages(resp)[0]


def test_the_next_collection_is_answered_for_a_subscribers_number(scheduler, client, tenant,
                                                                  round_):
    round_("A", rrule="FREQ=WEEKLY;BYDAY=TU", start="2026-01-06")
    client.post("/api/subscribers", headers=tenant.headers(), json=[
        {"phone": "07700900001", "attributes": {"round": "A", "uprn": "1001"}},
        {"phone": "07700900002"}])
    url = f"/internal/tenants/{tenant.id}/next-collection?phone=07700%20900001"
    body = client.get(url, headers=ADMIN).get_json()
    nxt = dt.date.fromisoformat(body["next_collection"]["date"])
    assert body["phone"] == "+447700900001"
    assert nxt.weekday() == 1 and 0 <= (nxt - dt.datetime.now(LONDON).date()).days < 7
    assert body["next_collection"]["round"] == "A"
    assert body["next_collection"]["description"] == {"cy": "bagiau du", "en": "black bags"}
    no_round = client.get(f"/internal/tenants/{tenant.id}/next-collection?phone=07700900002",
                          headers=ADMIN)
    assert no_round.get_json() == {"phone": "+447700900002", "next_collection": None}
    sub = client.get(f"/internal/tenants/{tenant.id}/subscribers?phone=%2B447700900001",
                     headers=ADMIN).get_json()
    assert sub["attributes"] == {"round": "A", "uprn": "1001"} and sub["opted_out"] is False


def test_the_internal_answers_need_the_admin_token_and_a_known_number(client, tenant,
                                                                      new_tenant):
    other = new_tenant("caerdydd")
    client.post("/api/subscribers", headers=tenant.headers(), json={"phone": "07700900001"})
    base = f"/internal/tenants/{tenant.id}"
    assert client.get(f"{base}/next-collection?phone=07700900001").status_code == 401
    assert client.get(f"{base}/next-collection?phone=07700900001",
                      headers={"Authorization": "Bearer nope"}).status_code == 403
    assert client.get(f"{base}/next-collection?phone=07700900009", headers=ADMIN
                      ).status_code == 404
    assert client.get(f"/internal/tenants/{other.id}/subscribers?phone=07700900001",
                      headers=ADMIN).status_code == 404
    assert client.get(f"{base}/subscribers?phone=banana", headers=ADMIN).status_code == 400


def test_a_round_change_replans_and_pausing_holds_a_recurring_campaign(
        scheduler, client, tenant, round_):
    round_("A")
    cid = collection(client, tenant).get_json()["id"]
    Ticker(scheduler.runtime.db).plan_ahead(at("2099-01-01T12:00"), force=True)
    resp = client.patch("/api/rounds/A", headers=tenant.headers(),
                        json={"exdates": ["2099-01-06"]})
    assert resp.status_code == 200, resp.get_json()
    with scheduler.runtime.db.transaction() as session:
        session.get(Campaign, cid).planned_until = None
    Ticker(scheduler.runtime.db).plan_ahead(at("2099-01-01T12:00"), force=True)
    assert "A:2099-01-06" not in [o.occurrence_key for o in occurrences(scheduler, cid)]
    client.post(f"/api/campaigns/{cid}/pause", headers=tenant.headers())
    resumed = client.post(f"/api/campaigns/{cid}/resume", headers=tenant.headers()).get_json()
    assert resumed["status"] == "scheduled"
