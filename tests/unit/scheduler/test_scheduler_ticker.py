"""The ticker: one notification.requested per eligible subscriber, never two."""
from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

from services.scheduler.models import Campaign, Occurrence
from services.scheduler.ticker import NOTIFICATION_NAMESPACE, Ticker, notification_id
from shared import events
from shared.db import utcnow
from shared.metrics import METRICS

TEMPLATE_ID = str(uuid.uuid4())
SEND_AT = (utcnow() + dt.timedelta(hours=1)).replace(microsecond=0)
DUE = SEND_AT + dt.timedelta(seconds=1)


@pytest.fixture
def tenant(new_tenant):
    return new_tenant("penfro")


@pytest.fixture
def subscribe(client, tenant):
    def _subscribe(*rows: dict) -> None:
        resp = client.post("/api/subscribers", headers=tenant.headers(), json=list(rows))
        assert resp.status_code == 201 and not resp.get_json()["errors"], resp.get_json()
    return _subscribe


@pytest.fixture
def campaign(client, tenant):
    def _campaign(**overrides) -> dict:
        body = {"name": "Bin day moved", "template_id": TEMPLATE_ID, "channel": "sms",
                "send_at": SEND_AT.isoformat(), "personalisation": {"day": "dydd Sadwrn"}}
        body.update(overrides)
        resp = client.post("/api/campaigns", headers=tenant.headers(), json=body)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()
    return _campaign


@pytest.fixture
def requested(outbox_events):
    return lambda: [e["data"] for e in outbox_events("notification.requested")]


def occurrence(scheduler, campaign_id: str) -> Occurrence:
    with scheduler.runtime.db.read() as session:
        return session.scalars(sa.select(Occurrence).where(
            Occurrence.campaign_id == campaign_id)).one()


def test_each_eligible_subscriber_gets_exactly_one_request_in_their_own_language(
        scheduler, subscribe, campaign, requested):
    subscribe({"phone": "07700900001", "language": "cy"},
              {"phone": "07700900002", "language": "en"},
              {"phone": "07700900003"})
    c = campaign()
    assert scheduler.ticker.run_once(now=DUE) == 3
    by_recipient = {d["recipient"]: d for d in requested()}
    assert {r: d["language"] for r, d in by_recipient.items()} == {
        "+447700900001": "cy", "+447700900002": "en", "+447700900003": None}
    first = by_recipient["+447700900001"]
    assert (first["template_id"], first["channel"], first["campaign_id"]) == (
        TEMPLATE_ID, "sms", c["id"])
    assert first["occurrence_key"] == c["occurrences"][0]["occurrence_key"]
    assert first["reference"] == f"{c['id']}:{first['occurrence_key']}"
    assert first["urgent"] is False


def test_opted_out_subscribers_and_those_without_a_number_are_not_sent_to(
        scheduler, tenant, subscribe, campaign, requested, deliver):
    subscribe({"phone": "07700900001"}, {"phone": "07700900002"}, {"email": "e@example.com"})
    deliver(events.make("subscriber.opted_out", tenant.id, recipient="+447700900002"))
    campaign()
    scheduler.ticker.run_once(now=DUE)
    assert [d["recipient"] for d in requested()] == ["+447700900001"]


def test_an_email_campaign_reaches_the_subscribers_with_an_email(
        scheduler, subscribe, campaign, requested):
    subscribe({"phone": "07700900001"}, {"phone": "07700900002", "email": "Both@Example.com"})
    campaign(channel="email")
    scheduler.ticker.run_once(now=DUE)
    assert [(d["recipient"], d["channel"]) for d in requested()] == [("both@example.com", "email")]


def test_the_audience_filter_picks_subscribers_by_attribute(
        scheduler, subscribe, campaign, requested):
    subscribe({"phone": "07700900001", "attributes": {"round": "A"}},
              {"phone": "07700900002", "attributes": {"round": "B"}},
              {"phone": "07700900003", "attributes": {"round": "C"}},
              {"phone": "07700900004"})
    campaign(audience={"round": ["A", "C"]})
    scheduler.ticker.run_once(now=DUE)
    assert sorted(d["recipient"] for d in requested()) == ["+447700900001", "+447700900003"]


def test_personalisation_is_the_campaigns_values_overlaid_with_the_subscribers_attributes(
        scheduler, subscribe, campaign, requested):
    subscribe({"phone": "07700900001", "attributes": {"round": "A", "day": "dydd Llun"}},
              {"phone": "07700900002", "attributes": {"round": "A"}})
    campaign(personalisation={"day": "dydd Sadwrn", "council": "Sir Benfro"})
    scheduler.ticker.run_once(now=DUE)
    by_recipient = {d["recipient"]: d["personalisation"] for d in requested()}
    assert by_recipient == {
        "+447700900001": {"day": "dydd Llun", "council": "Sir Benfro", "round": "A"},
        "+447700900002": {"day": "dydd Sadwrn", "council": "Sir Benfro", "round": "A"}}


def test_nothing_is_sent_before_the_send_time(scheduler, subscribe, campaign, requested):
    subscribe({"phone": "07700900001"})
    campaign()
    assert scheduler.ticker.run_once(now=SEND_AT - dt.timedelta(seconds=1)) == 0
    assert requested() == []


def test_a_second_run_and_a_second_ticker_request_nothing_more(
        scheduler, subscribe, campaign, requested):
    subscribe(*({"phone": f"077009000{i:02d}"} for i in range(10)))
    campaign()
    assert scheduler.ticker.run_once(now=DUE) == 10
    assert scheduler.ticker.run_once(now=DUE + dt.timedelta(minutes=1)) == 0
    assert Ticker(scheduler.runtime.db).run_once(now=DUE + dt.timedelta(minutes=2)) == 0
    assert len(requested()) == 10


def test_a_finished_occurrence_records_its_count_and_announces_it(
        scheduler, subscribe, campaign, outbox_events, client, tenant):
    subscribe({"phone": "07700900001"}, {"phone": "07700900002"})
    c = campaign()
    scheduler.ticker.run_once(now=DUE)
    occ = occurrence(scheduler, c["id"])
    assert (occ.status, occ.requested, occ.skipped) == ("completed", 2, 0)
    [done] = [e["data"] for e in outbox_events("campaign.occurrence.completed")]
    assert done == {"campaign_id": c["id"], "occurrence_key": occ.occurrence_key,
                    "requested": 2, "skipped": 0}
    body = client.get(f"/api/campaigns/{c['id']}", headers=tenant.headers()).get_json()
    assert body["status"] == "completed"
    assert body["occurrences"][0]["requested"] == 2


def test_notification_ids_are_derived_from_campaign_subscriber_and_occurrence(
        scheduler, client, tenant, subscribe, campaign, requested):
    subscribe({"phone": "07700900001"})
    c = campaign()
    scheduler.ticker.run_once(now=DUE)
    [data] = requested()
    [sub] = client.get("/api/subscribers", headers=tenant.headers()).get_json()["subscribers"]
    key = c["occurrences"][0]["occurrence_key"]
    assert data["notification_id"] == str(uuid.uuid5(
        NOTIFICATION_NAMESPACE, f"{c['id']}:{sub['id']}:{key}"))
    assert notification_id(c["id"], sub["id"], key) == data["notification_id"]
    assert notification_id(c["id"], sub["id"], "2099-01-01T00:00:00Z") != data["notification_id"]


def test_a_large_audience_goes_out_in_batches_each_committed_on_its_own(
        scheduler, subscribe, campaign, requested):
    subscribe(*({"phone": f"077009000{i:02d}"} for i in range(10)))
    c = campaign()
    commits: list[int] = []
    ticker = Ticker(scheduler.runtime.db, batch=3, on_outbox=lambda: commits.append(1))
    assert ticker.run_once(now=DUE) == 10
    assert len(commits) == 4                      # 3 + 3 + 3 + 1, the last one completes
    assert len({d["notification_id"] for d in requested()}) == 10
    assert occurrence(scheduler, c["id"]).requested == 10


class CrashingTicker(Ticker):
    """A ticker that dies while building the batch holding its ``crash_at``-th request."""

    def __init__(self, db, crash_at: int, **kwargs):
        super().__init__(db, **kwargs)
        self.crash_at = crash_at
        self.built = 0

    def _requested(self, campaign, occ, s, position=0):
        self.built += 1
        if self.built == self.crash_at:
            raise ConnectionResetError("the ticker's process was killed")
        return super()._requested(campaign, occ, s, position)


def test_a_ticker_that_dies_mid_occurrence_is_resumed_after_its_last_committed_batch(
        scheduler, subscribe, campaign, requested):
    subscribe(*({"phone": f"077009000{i:02d}"} for i in range(10)))
    c = campaign()
    CrashingTicker(scheduler.runtime.db, crash_at=5, batch=3).run_once(now=DUE)
    assert len(requested()) == 3                  # the first batch was committed
    assert occurrence(scheduler, c["id"]).status == "emitting"
    assert Ticker(scheduler.runtime.db, batch=3).run_once(now=DUE) == 7
    ids = [d["notification_id"] for d in requested()]
    assert len(ids) == len(set(ids)) == 10


def test_a_paused_campaign_waits_and_sends_once_resumed(
        scheduler, client, tenant, subscribe, campaign, requested):
    subscribe({"phone": "07700900001"})
    c = campaign()
    client.post(f"/api/campaigns/{c['id']}/pause", headers=tenant.headers())
    assert scheduler.ticker.run_once(now=DUE) == 0
    assert scheduler.ticker.lag_seconds(now=DUE) == 0    # held on purpose: not lag
    client.post(f"/api/campaigns/{c['id']}/resume", headers=tenant.headers())
    assert scheduler.ticker.run_once(now=DUE) == 1


def test_an_inactive_tenants_campaign_is_not_sent(
        scheduler, tenant, subscribe, campaign, requested, deliver):
    subscribe({"phone": "07700900001"})
    campaign()
    deliver(events.make("tenant.changed", tenant.id, slug=tenant.slug, name="Penfro",
                        revision=2, default_language="cy", config={}, active=False))
    assert scheduler.ticker.run_once(now=DUE) == 0


def test_an_occurrence_found_after_its_grace_window_is_skipped_and_counted(
        scheduler, subscribe, campaign, requested, outbox_events):
    subscribe({"phone": "07700900001"}, {"phone": "07700900002"})
    c = campaign()
    ticker = Ticker(scheduler.runtime.db, grace=dt.timedelta(hours=2))
    assert ticker.run_once(now=SEND_AT + dt.timedelta(hours=3)) == 0
    assert requested() == []
    occ = occurrence(scheduler, c["id"])
    assert (occ.status, occ.requested, occ.skipped) == ("completed", 0, 2)
    assert outbox_events("campaign.occurrence.completed")[0]["data"]["skipped"] == 2


def test_lag_is_how_long_the_oldest_unsent_occurrence_has_been_due(
        scheduler, subscribe, campaign):
    subscribe({"phone": "07700900001"})
    assert scheduler.ticker.lag_seconds(now=DUE) == 0
    campaign()
    assert scheduler.ticker.lag_seconds(now=SEND_AT + dt.timedelta(seconds=90)) == 90
    scheduler.ticker.run_once(now=DUE)
    assert scheduler.ticker.lag_seconds(now=SEND_AT + dt.timedelta(seconds=90)) == 0


def test_the_ticker_loop_sends_what_is_due_reports_lag_and_stops_when_told(
        scheduler, subscribe, campaign, requested):
    subscribe({"phone": "07700900001"})
    c = campaign()
    ticker = Ticker(scheduler.runtime.db, interval=0.01, clock=lambda: DUE)
    METRICS.scheduler_lag.set(123)
    stop = threading.Event()
    loop = threading.Thread(target=ticker.run_forever, args=(stop,))
    loop.start()
    try:
        deadline = utcnow() + dt.timedelta(seconds=10)
        while occurrence(scheduler, c["id"]).status != "completed" and utcnow() < deadline:
            stop.wait(0.01)
    finally:
        stop.set()
        loop.join(5)
    assert not loop.is_alive()
    assert len(requested()) == 1
    assert METRICS.registry.get_sample_value("hysbys_scheduler_lag_seconds") == 0


def test_a_campaign_with_nobody_in_its_audience_completes_with_nothing_sent(
        scheduler, campaign, outbox_events):
    c = campaign()
    assert scheduler.ticker.run_once(now=DUE) == 0
    assert occurrence(scheduler, c["id"]).status == "completed"
    with scheduler.runtime.db.read() as session:
        assert session.get(Campaign, c["id"]).status == "completed"
    assert len(outbox_events("campaign.occurrence.completed")) == 1
