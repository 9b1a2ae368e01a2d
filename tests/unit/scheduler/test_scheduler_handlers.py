"""What the scheduler does with the events it consumes: opt-outs, stats, tenancy."""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from services.scheduler import handlers
from services.scheduler.models import CampaignStat, Subscriber
from shared import events, topology
from shared.tenancy import ApiKey


def opted_out(scheduler) -> dict[tuple[str, str], bool]:
    with scheduler.runtime.db.read() as session:
        return {(s.tenant_id, s.phone or s.email): s.opted_out
                for s in session.scalars(sa.select(Subscriber))}


def stats(scheduler) -> dict[tuple[str, str, str], int]:
    with scheduler.runtime.db.read() as session:
        return {(s.campaign_id, s.occurrence_key, s.status): s.count
                for s in session.scalars(sa.select(CampaignStat))}


def test_the_handlers_cover_exactly_the_event_types_bound_to_the_scheduler_queue():
    [spec] = topology.queues_for("scheduler")
    assert set(handlers.routes()) == set(spec.event_types)


def test_every_scheduler_queue_has_a_handler(scheduler):
    assert set(scheduler.queue_handlers()) == {q.name for q in topology.queues_for("scheduler")}


def test_a_stop_reply_opts_out_that_number_for_that_tenant_only(
        scheduler, client, new_tenant, deliver):
    penfro, caerdydd = new_tenant("penfro"), new_tenant("caerdydd")
    for t in (penfro, caerdydd):
        client.post("/api/subscribers", headers=t.headers(),
                    json=[{"phone": "07700900123"}, {"phone": "07700900456"}])
    deliver(events.make("subscriber.opted_out", penfro.id, recipient="+447700900123"))
    assert opted_out(scheduler) == {
        (penfro.id, "+447700900123"): True, (penfro.id, "+447700900456"): False,
        (caerdydd.id, "+447700900123"): False, (caerdydd.id, "+447700900456"): False}


def test_a_start_reply_opts_the_number_back_in(scheduler, client, new_tenant, deliver):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(), json={"phone": "07700900123"})
    deliver(events.make("subscriber.opted_out", t.id, recipient="+447700900123"))
    deliver(events.make("subscriber.opted_in", t.id, recipient="+447700900123"))
    assert opted_out(scheduler) == {(t.id, "+447700900123"): False}


def test_an_email_opt_out_matches_the_address_whatever_its_case(
        scheduler, client, new_tenant, deliver):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(),
                json=[{"email": "sian@example.cymru"}, {"phone": "07700900123"}])
    deliver(events.make("subscriber.opted_out", t.id, recipient="Sian@Example.CYMRU",
                        channel="email", source="team"))
    assert opted_out(scheduler) == {(t.id, "sian@example.cymru"): True,
                                    (t.id, "+447700900123"): False}


def test_campaign_notification_outcomes_are_counted_per_occurrence_and_status(
        scheduler, new_tenant, deliver):
    t = new_tenant("penfro")
    campaign_id = str(uuid.uuid4())

    def outcome(event_type, status, key="2099-11-25T18:00:00Z"):
        return events.make(event_type, t.id, notification_id=uuid.uuid4(), status=status,
                           channel="sms", campaign_id=campaign_id, occurrence_key=key)
    deliver(outcome("notification.sent", "sent"))
    deliver(outcome("notification.delivered", "delivered"))
    deliver(outcome("notification.delivered", "delivered"))
    deliver(outcome("notification.deferred", "deferred"))
    deliver(outcome("notification.delivered", "delivered", key="2099-12-02T18:00:00Z"))
    assert stats(scheduler) == {
        (campaign_id, "2099-11-25T18:00:00Z", "sent"): 1,
        (campaign_id, "2099-11-25T18:00:00Z", "delivered"): 2,
        (campaign_id, "2099-11-25T18:00:00Z", "deferred"): 1,
        (campaign_id, "2099-12-02T18:00:00Z", "delivered"): 1}


def test_a_redelivered_outcome_is_counted_once(scheduler, new_tenant, deliver):
    t = new_tenant("penfro")
    event = events.make("notification.delivered", t.id, notification_id=uuid.uuid4(),
                        status="delivered", channel="sms", campaign_id=uuid.uuid4(),
                        occurrence_key="2099-11-25T18:00:00Z")
    deliver(event)
    deliver(event)
    assert list(stats(scheduler).values()) == [1]


def test_outcomes_of_notifications_outside_any_campaign_are_ignored(
        scheduler, new_tenant, deliver):
    t = new_tenant("penfro")
    deliver(events.make("notification.delivered", t.id, notification_id=uuid.uuid4(),
                        status="delivered", channel="sms"))
    assert stats(scheduler) == {}


def test_a_revoked_key_stops_working_in_the_scheduler_as_soon_as_the_event_arrives(
        scheduler, client, new_tenant, deliver):
    t = new_tenant("penfro")
    assert client.get("/api/campaigns", headers=t.headers()).status_code == 200
    with scheduler.runtime.db.read() as session:
        key_id = session.scalars(sa.select(ApiKey.id).where(ApiKey.tenant_id == t.id)).one()
    deliver(events.make("api_key.revoked", t.id, key_id=key_id,
                        revoked_at=dt.datetime.now(dt.UTC)))
    assert client.get("/api/campaigns", headers=t.headers()).status_code == 403


def test_a_cymraeg_reply_makes_that_subscribers_next_reminders_welsh(
        scheduler, client, new_tenant, deliver):
    t = new_tenant("penfro")
    client.post("/api/subscribers", headers=t.headers(),
                json=[{"phone": "07700 900123", "language": "en"}, {"phone": "07700 900456"}])
    deliver(events.make("subscriber.language_changed", t.id, recipient="+447700900123",
                        language="cy"))
    with scheduler.runtime.db.read() as session:
        languages = {s.phone: s.language for s in session.scalars(sa.select(Subscriber))}
    assert languages == {"+447700900123": "cy", "+447700900456": None}


def test_a_reply_to_a_campaigns_text_is_counted_in_its_stats(scheduler, new_tenant, deliver):
    t = new_tenant("penfro")
    campaign = str(uuid.uuid4())
    for keyword in ("WHEN", "MISSED"):
        deliver(events.make("inbound.message.received", t.id, message_id=uuid.uuid4(),
                            provider_reference=f"SM{keyword}", from_number="+447700900123",
                            to_number="+447700900999", body=keyword,
                            received_at=dt.datetime.now(dt.timezone.utc), campaign_id=campaign))
    deliver(events.make("inbound.message.received", t.id, message_id=uuid.uuid4(),
                        provider_reference="SMother", from_number="+447700900123",
                        to_number="+447700900999", body="hi",
                        received_at=dt.datetime.now(dt.timezone.utc)))
    assert stats(scheduler) == {(campaign, "", "replied"): 2}
