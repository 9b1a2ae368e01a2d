"""Campaigns over HTTP: set-up with errors that name the field, pause/resume, isolation."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from shared import events
from shared.db import utcnow

TEMPLATE_ID = str(uuid.uuid4())


def broadcast(**overrides) -> dict:
    body = {"name": "Bins: Christmas changes", "template_id": TEMPLATE_ID, "channel": "sms",
            "send_at": (utcnow() + dt.timedelta(days=1)).replace(microsecond=0).isoformat(),
            "audience": {"round": "A"}, "personalisation": {"date": "27 Rhagfyr"}}
    body.update(overrides)
    return body


def test_a_broadcast_is_scheduled_with_one_pending_occurrence_keyed_by_its_send_time(
        client, new_tenant):
    t = new_tenant("penfro")
    resp = client.post("/api/campaigns", headers=t.headers(),
                       json=broadcast(send_at="2099-11-25T18:00:00+00:00"))
    assert resp.status_code == 201
    body = resp.get_json()
    assert (body["kind"], body["status"], body["channel"]) == ("broadcast", "scheduled", "sms")
    assert body["send_at"] == "2099-11-25T18:00:00.000000Z"
    assert body["audience"] == {"round": "A"}
    assert [(o["occurrence_key"], o["status"]) for o in body["occurrences"]] == [
        ("2099-11-25T18:00:00Z", "pending")]
    assert body["stats"] == {}


def test_a_send_time_given_in_welsh_summer_time_is_stored_in_utc(client, new_tenant):
    t = new_tenant("penfro")
    body = client.post("/api/campaigns", headers=t.headers(),
                       json=broadcast(send_at="2099-07-01T18:00:00+01:00")).get_json()
    assert body["occurrences"][0]["occurrence_key"] == "2099-07-01T17:00:00Z"


@pytest.mark.parametrize("change, field", [
    ({"template_id": None}, "template_id"),
    ({"template_id": "not-a-uuid"}, "template_id"),
    ({"channel": "letter"}, "channel"),
    ({"kind": "lottery"}, "kind"),
    ({"send_at": "2099-11-25T18:00:00"}, "send_at"),
    ({"send_at": "tomorrow"}, "send_at"),
    ({"audience": {"round": 5}}, "audience.round"),
    ({"audience": ["A"]}, "audience"),
    ({"name": ""}, "name"),
    ({"colour": "blue"}, "colour"),
])
def test_a_bad_campaign_is_a_400_that_names_the_field(client, new_tenant, error_messages,
                                                      change, field):
    t = new_tenant("penfro")
    resp = client.post("/api/campaigns", headers=t.headers(), json=broadcast(**change))
    assert resp.status_code == 400
    assert any(field in m for m in error_messages(resp)), error_messages(resp)
    assert resp.get_json()["errors"][0]["error"] == "ValidationError"


def test_a_send_time_more_than_a_minute_in_the_past_is_a_400_naming_send_at(
        client, new_tenant, error_messages):
    t = new_tenant("penfro")
    past = (utcnow() - dt.timedelta(minutes=5)).isoformat()
    resp = client.post("/api/campaigns", headers=t.headers(), json=broadcast(send_at=past))
    assert (resp.status_code, error_messages(resp)) == (400, ["send_at must not be in the past"])


def test_a_send_time_a_few_seconds_ago_is_due_now_and_wakes_the_ticker(
        scheduler, client, new_tenant):
    t = new_tenant("penfro")
    just_now = (utcnow() - dt.timedelta(seconds=5)).isoformat()
    assert not scheduler.ticker.nudge.is_set()
    resp = client.post("/api/campaigns", headers=t.headers(), json=broadcast(send_at=just_now))
    assert resp.status_code == 201
    assert scheduler.ticker.nudge.is_set()


def test_another_tenants_campaign_is_404_whatever_you_do_to_it(client, new_tenant,
                                                                  error_messages):
    penfro, caerdydd = new_tenant("penfro"), new_tenant("caerdydd")
    cid = client.post("/api/campaigns", headers=penfro.headers(), json=broadcast()).get_json()["id"]
    for resp in (client.get(f"/api/campaigns/{cid}", headers=caerdydd.headers()),
                 client.post(f"/api/campaigns/{cid}/pause", headers=caerdydd.headers()),
                 client.post(f"/api/campaigns/{cid}/resume", headers=caerdydd.headers())):
        assert (resp.status_code, error_messages(resp)) == (404, ["No result found"])
    assert client.get("/api/campaigns", headers=caerdydd.headers()).get_json()["campaigns"] == []
    assert client.get(f"/api/campaigns/{cid}", headers=penfro.headers()).status_code == 200


def test_a_campaign_id_that_is_not_a_uuid_is_404(client, new_tenant):
    t = new_tenant("penfro")
    assert client.get("/api/campaigns/42", headers=t.headers()).status_code == 404


def test_a_campaign_can_be_paused_and_resumed_and_both_are_idempotent(client, new_tenant):
    t = new_tenant("penfro")
    cid = client.post("/api/campaigns", headers=t.headers(), json=broadcast()).get_json()["id"]
    for _ in range(2):
        resp = client.post(f"/api/campaigns/{cid}/pause", headers=t.headers())
        assert (resp.status_code, resp.get_json()["status"]) == (200, "paused")
    for _ in range(2):
        resp = client.post(f"/api/campaigns/{cid}/resume", headers=t.headers())
        assert (resp.status_code, resp.get_json()["status"]) == (200, "scheduled")


def test_campaigns_are_listed_newest_first_and_can_be_filtered_by_status(client, new_tenant):
    t = new_tenant("penfro")
    first = client.post("/api/campaigns", headers=t.headers(), json=broadcast(name="one"))
    second = client.post("/api/campaigns", headers=t.headers(), json=broadcast(name="two"))
    client.post(f"/api/campaigns/{first.get_json()['id']}/pause", headers=t.headers())
    listed = client.get("/api/campaigns", headers=t.headers()).get_json()["campaigns"]
    assert [c["name"] for c in listed] == ["two", "one"]
    paused = client.get("/api/campaigns?status=paused", headers=t.headers()).get_json()
    assert [c["id"] for c in paused["campaigns"]] == [first.get_json()["id"]]
    assert second.get_json()["id"] not in [c["id"] for c in paused["campaigns"]]


def test_a_campaign_reports_delivery_stats_per_status(client, new_tenant, deliver):
    t = new_tenant("penfro")
    created = client.post("/api/campaigns", headers=t.headers(), json=broadcast()).get_json()
    key = created["occurrences"][0]["occurrence_key"]
    for status, event_type in (("sent", "notification.sent"),
                               ("delivered", "notification.delivered"),
                               ("delivered", "notification.delivered"),
                               ("permanent-failure", "notification.failed")):
        deliver(events.make(event_type, t.id, notification_id=uuid.uuid4(), status=status,
                            channel="sms", campaign_id=created["id"], occurrence_key=key))
    body = client.get(f"/api/campaigns/{created['id']}", headers=t.headers()).get_json()
    assert body["stats"] == {"sent": 1, "delivered": 2, "permanent-failure": 1}
    assert body["occurrences"][0]["stats"] == body["stats"]


def test_the_audience_size_counts_who_the_campaign_would_reach_now(client, new_tenant):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(), json=[
        {"phone": "07700900001", "attributes": {"round": "A"}},
        {"phone": "07700900002", "attributes": {"round": "B"}},
        {"email": "c@example.com", "attributes": {"round": "A"}}])
    body = client.post("/api/campaigns", headers=t.headers(), json=broadcast()).get_json()
    assert body["audience_size"] == 1


def test_a_campaign_is_changed_with_patch_and_its_pending_occurrence_replanned(client,
                                                                             new_tenant):
    t = new_tenant("penfro")
    cid = client.post("/api/campaigns", headers=t.headers(), json=broadcast()).get_json()["id"]
    resp = client.patch(f"/api/campaigns/{cid}", headers=t.headers(), json={
        "name": "Bins: new date", "send_at": "2099-12-27T18:00:00+00:00", "fragments": 2,
        "window": {"start": "17:00", "end": "20:00"}, "sender": "PembsCC"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["name"], body["fragments"], body["sender"]) == ("Bins: new date", 2, "PembsCC")
    assert [o["occurrence_key"] for o in body["occurrences"]] == ["2099-12-27T18:00:00Z"]


@pytest.mark.parametrize("change, field", [
    ({"fragments": 0}, "fragments"), ({"window": {"start": "9am", "end": "17:00"}}, "window.start"),
    ({"sender": "A sender that is far too long"}, "sender"), ({"kind": "collection"}, "kind"),
    ({"send_at": "2001-01-01T00:00:00+00:00"}, "send_at"), ({"schedule": {"at": "18:00"}},
                                                            "schedule"),
])
def test_a_bad_change_is_a_400_naming_the_field_and_changes_nothing(client, new_tenant,
                                                                    error_messages, change,
                                                                    field):
    t = new_tenant("penfro")
    created = client.post("/api/campaigns", headers=t.headers(), json=broadcast()).get_json()
    resp = client.patch(f"/api/campaigns/{created['id']}", headers=t.headers(), json=change)
    assert resp.status_code == 400
    assert any(field in m for m in error_messages(resp)), error_messages(resp)
    after = client.get(f"/api/campaigns/{created['id']}", headers=t.headers()).get_json()
    assert after["occurrences"] == created["occurrences"]


def test_an_archived_campaign_cancels_its_pending_occurrences_and_cannot_be_resumed(
        scheduler, client, new_tenant, error_messages):
    t = new_tenant("penfro")
    cid = client.post("/api/campaigns", headers=t.headers(), json=broadcast()).get_json()["id"]
    body = client.post(f"/api/campaigns/{cid}/archive", headers=t.headers()).get_json()
    assert body["status"] == "archived"
    assert [o["status"] for o in body["occurrences"]] == ["cancelled"]
    resumed = client.post(f"/api/campaigns/{cid}/resume", headers=t.headers())
    assert resumed.status_code == 409
    assert client.patch(f"/api/campaigns/{cid}", headers=t.headers(),
                        json={"name": "x"}).status_code == 409
    assert scheduler.ticker.run_once(now=utcnow() + dt.timedelta(days=2)) == 0


def test_a_preview_shows_who_would_get_what_when_and_the_cost_without_sending(
        scheduler, client, new_tenant, outbox_events):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(), json=[
        {"phone": "07700900001", "language": "cy", "attributes": {"round": "A", "name": "Siân"}},
        {"phone": "07700900002", "language": "en", "attributes": {"round": "A"}},
        {"phone": "07700900003", "attributes": {"round": "A"}},
        {"phone": "07700900004", "attributes": {"round": "B"}}])
    cid = client.post("/api/campaigns", headers=t.headers(),
                      json=broadcast(fragments=2)).get_json()["id"]
    resp = client.get(f"/api/campaigns/{cid}/preview?limit=2&price_per_fragment=0.03",
                      headers=t.headers())
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["dry_run"], body["recipients"]) == (True, 3)
    assert body["languages"] == {"cy": 1, "en": 1, "unknown": 1}
    assert body["segments"] == 2 + 2 + 4                 # unknown language: both, Welsh first
    assert body["estimated_cost"] == 0.24
    assert len(body["sample"]) == 2
    first = body["sample"][0]
    assert first["personalisation"]["date"] == "27 Rhagfyr" and first["not_before"]
    assert body["capacity"]["recipients"] == 3
    assert outbox_events("notification.requested") == []


def test_metrics_report_scheduler_lag_read_from_the_database(scheduler, client, new_tenant):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(), json={"phone": "07700900001"})
    client.post("/api/campaigns", headers=t.headers(), json=broadcast(
        send_at=(utcnow() - dt.timedelta(seconds=30)).isoformat()))
    text = client.get("/metrics").get_data(as_text=True)
    [line] = [x for x in text.splitlines() if x.startswith("hysbys_scheduler_lag_seconds ")]
    assert float(line.split()[1]) >= 29


def test_campaigns_can_be_listed_by_kind(client, new_tenant):
    t = new_tenant("penfro")
    client.post("/api/campaigns", headers=t.headers(), json=broadcast())
    client.post("/api/campaigns", headers=t.headers(), json={
        "name": "clinic", "kind": "appointment", "template_id": TEMPLATE_ID, "channel": "sms"})
    listed = client.get("/api/campaigns?kind=appointment", headers=t.headers()).get_json()
    assert [c["name"] for c in listed["campaigns"]] == ["clinic"]





@pytest.mark.parametrize("key_type", ["test", "team"])
def test_a_test_or_team_key_cannot_set_up_texts_to_real_citizens(client, new_tenant, key_type):
    t = new_tenant(f"penfro-{key_type}", key_type=key_type)
    send_at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).isoformat()
    r = client.post("/api/campaigns", headers=t.headers(), json={
        "name": "Bins", "kind": "broadcast", "template_id": str(uuid.uuid4()),
        "channel": "sms", "send_at": send_at, "audience": {}})
    assert r.status_code == 403
    assert "live API key" in r.get_json()["errors"][0]["message"]
    assert client.get("/api/campaigns", headers=t.headers()).status_code == 200, \
        "looking is still allowed"


class FakeTemplates:
    """notify's fragment counts for the scheduler (the port's hand-written fake)."""

    def __init__(self, counts: dict | None):
        self.counts = counts
        self.asked: list[tuple[str, str, dict]] = []

    def fragments(self, tenant_id: str, template_id: str, personalisation: dict | None):
        self.asked.append((tenant_id, template_id, personalisation or {}))
        return self.counts


def test_the_preview_costs_each_language_at_its_real_fragment_count_from_notify(
        scheduler, new_tenant):
    """A Welsh text with a circumflex is UCS-2 (2 fragments), its English 1, both 3: the
    team's typed figure (5) is not what the cost or the capacity use."""
    scheduler.templates = FakeTemplates({"cy": 2, "en": 1, "cy+en": 3})
    client = scheduler.create_app().test_client()
    t = new_tenant("ceredigion")
    client.post("/api/subscribers", headers=t.headers(), json=[
        {"phone": f"0770090000{n}", "attributes": {"round": "A"}, **lang}
        for n, lang in enumerate([{"language": "cy"}, {"language": "cy"}, {"language": "en"}, {}],
                                 start=1)])
    created = client.post("/api/campaigns", headers=t.headers(),
                          json=broadcast(fragments=5)).get_json()
    assert created["fragments_by_language"] == {"cy": 2, "en": 1, "cy+en": 3}
    assert scheduler.templates.asked[0][:2] == (t.id, TEMPLATE_ID)
    body = client.get(f"/api/campaigns/{created['id']}/preview?price_per_fragment=0.02",
                      headers=t.headers()).get_json()
    assert body["segments"] == 2 * 2 + 1 * 1 + 1 * 3
    assert body["estimated_cost"] == 0.16
    assert (body["fragments_by_language"], body["fragments_source"]) == \
        ({"cy": 2, "en": 1, "cy+en": 3}, "template")
    assert body["capacity"]["segments"] == 8


def test_where_notify_does_not_answer_the_stored_count_and_then_the_teams_figure_stand(
        scheduler, new_tenant):
    scheduler.templates = FakeTemplates({"cy": 2, "en": 2, "cy+en": 4})
    client = scheduler.create_app().test_client()
    t = new_tenant("powys")
    client.post("/api/subscribers", headers=t.headers(),
                json=[{"phone": "07700900001", "attributes": {"round": "A"}}])
    cid = client.post("/api/campaigns", headers=t.headers(),
                      json=broadcast(fragments=1)).get_json()["id"]
    scheduler.templates.counts = None               # notify down from now on
    body = client.get(f"/api/campaigns/{cid}/preview", headers=t.headers()).get_json()
    assert (body["segments"], body["fragments_source"]) == (4, "template"), "the stored count"
    never = client.post("/api/campaigns", headers=t.headers(),
                        json=broadcast(fragments=3)).get_json()
    assert never["fragments_by_language"] is None
    body = client.get(f"/api/campaigns/{never['id']}/preview", headers=t.headers()).get_json()
    assert (body["segments"], body["fragments_source"]) == (6, "campaign")
