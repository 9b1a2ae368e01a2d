"""The batch forms of busy handlers do what the one-at-a-time forms do."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from services.inbound import handlers as inbound_handlers
from services.inbound.models import Conversation
from services.inbound.wiring import build as build_inbound
from services.notify import tenants as notify_tenants
from services.notify.handlers import on_notifications_requested
from services.notify.models import Notification
from services.notify.templates import create_template
from services.notify.wiring import build as build_notify
from services.scheduler.handlers import on_notification_outcome, on_notification_outcomes
from services.scheduler.models import CampaignStat
from services.scheduler.wiring import build as build_scheduler
from shared import events
from shared.bus import PermanentError


def migrated(build, settings):
    svc = build(settings)
    svc.runtime.migrate()
    return svc


def outcome(status: str, campaign: str, key: str = "k1", **extra) -> events.Event:
    return events.make(f"notification.{'failed' if 'failure' in status else status}",
                       uuid.uuid4(), notification_id=uuid.uuid4(), status=status, channel="sms",
                       campaign_id=campaign, occurrence_key=key, **extra)


def test_a_batch_of_outcomes_counts_the_same_as_one_at_a_time(embedded_settings):
    sched = migrated(build_scheduler, embedded_settings)
    campaign = str(uuid.uuid4())
    batch = [outcome("sent", campaign) for _ in range(5)] + \
        [outcome("delivered", campaign) for _ in range(3)] + [outcome("sent", campaign, "k2")]
    with sched.runtime.db.transaction() as session:
        on_notification_outcomes(batch[:6], session)
        for e in batch[6:]:
            on_notification_outcome(e, session)
    with sched.runtime.db.read() as session:
        counts = {(s.occurrence_key, s.status): s.count
                  for s in session.scalars(sa.select(CampaignStat))}
    assert counts == {("k1", "sent"): 5, ("k1", "delivered"): 3, ("k2", "sent"): 1}


def test_in_a_batch_the_newest_text_to_a_citizen_becomes_the_context(embedded_settings):
    inbound = migrated(build_inbound, embedded_settings)
    tenant = uuid.uuid4()
    older, newer = (events.Event(type="notification.sent", tenant_id=tenant, data={
        "notification_id": uuid.uuid4(), "status": "sent", "channel": "sms",
        "recipient": "+447700900123"}) for _ in range(2))
    # the older one arrives second, in the same batch
    import dataclasses
    import datetime as dt
    older = dataclasses.replace(older, occurred_at=newer.occurred_at - dt.timedelta(minutes=5))
    with inbound.runtime.db.transaction() as session:
        inbound_handlers.remember_many([newer, older], session)
    with inbound.runtime.db.read() as session:
        row = session.scalars(sa.select(Conversation)).one()
    assert row.notification_id == str(newer.data["notification_id"])


@pytest.fixture
def notify(embedded_settings):
    svc = migrated(build_notify, embedded_settings)
    with svc.runtime.db.transaction() as session:
        created = notify_tenants.create_tenant(session, svc.runtime.box, name="P", slug="p",
                                               config={"quiet_hours": None})
        template = create_template(session, created.id, {
            "name": "t", "type": "sms", "body": {"en": "Hi ((name))", "cy": "Helo ((name))"}})
    return svc, created.id, template.id


def requested(tenant_id, template_id, nid=None, phone="+447700900123", **extra):
    return events.make("notification.requested", tenant_id, "cid",
                       notification_id=nid or uuid.uuid4(), template_id=template_id,
                       channel="sms", recipient=phone, personalisation={"name": "Dai"}, **extra)


def test_a_batch_of_requests_stores_each_notification_once(notify):
    svc, tenant_id, template_id = notify
    repeated = uuid.uuid4()
    batch = [requested(tenant_id, template_id) for _ in range(4)] + \
        [requested(tenant_id, template_id, nid=repeated)] * 2
    with svc.runtime.db.transaction() as session:
        on_notifications_requested(batch, session)
    with svc.runtime.db.transaction() as session:
        on_notifications_requested(batch[:2], session)    # a redelivery
    with svc.runtime.db.read() as session:
        rows = session.scalars(sa.select(Notification)).all()
    assert len(rows) == 5 and all(n.body == "Helo Dai\n\nHi Dai" for n in rows)


def test_one_invalid_request_fails_the_batch_so_the_worker_can_isolate_it(notify):
    svc, tenant_id, template_id = notify
    batch = [requested(tenant_id, template_id),
             requested(tenant_id, template_id, phone="+4412")]
    with pytest.raises(PermanentError):
        with svc.runtime.db.transaction() as session:
            on_notifications_requested(batch, session)
    with svc.runtime.db.read() as session:
        assert session.scalars(sa.select(Notification)).all() == []


class RecordingHttp:
    """A hand-written stand-in for requests.Session: records each callback POST."""

    def __init__(self):
        self.posts: list[tuple[str, dict]] = []

    def post(self, url, json=None, timeout=None, headers=None):
        self.posts.append((url, json))

        class Answer:
            status_code = 200
            text = ""

            def raise_for_status(self):
                return None
        return Answer()


def test_callback_events_are_claimed_only_for_tenants_with_a_callback_url(embedded_settings):
    from services.notify import handlers as notify_handlers
    from services.notify.status_callbacks import Sender
    from shared import inbox
    from shared.inbox import InboxRow

    svc = migrated(build_notify, embedded_settings)
    with svc.runtime.db.transaction() as session:
        quiet = notify_tenants.create_tenant(session, svc.runtime.box, name="Q", slug="q",
                                             config={"quiet_hours": None})
        hooked = notify_tenants.create_tenant(
            session, svc.runtime.box, name="H", slug="h",
            config={"quiet_hours": None, "delivery_status_url": "https://h.example/cb"})
        template = create_template(session, hooked.id, {
            "name": "t", "type": "sms", "body": {"en": "Hi", "cy": "Helo"}})
        stored = []
        for tenant in (quiet, hooked):
            n = Notification(id=str(uuid.uuid4()), tenant_id=tenant.id, template_id=template.id,
                             template_version=1, key_type="live", channel="sms",
                             recipient="+447700900123", status="delivered", body="Hi")
            session.add(n)
            stored.append(n)
    http = RecordingHttp()
    routes = notify_handlers.routes()
    callbacks = inbox.dispatcher(svc.runtime.db, "notify.callbacks",
                                 {"notification.delivered": routes["notification.delivered"]})
    batch = [events.make("notification.delivered", n.tenant_id, notification_id=n.id,
                         status="delivered", channel="sms") for n in stored]
    sender = Sender(svc.runtime.db, svc.runtime.box, http)

    callbacks.batch(batch)
    sender.run_once()                 # after commit
    callbacks.batch(batch)            # redelivered: the hooked tenant is not called twice
    sender.run_once()

    assert [url for url, _ in http.posts] == ["https://h.example/cb"]
    assert http.posts[0][1]["id"] == stored[1].id
    with svc.runtime.db.read() as session:
        claimed = session.scalars(sa.select(InboxRow.event_id)).all()
    assert claimed == [str(batch[1].id)]      # no inbox row for the tenant without a URL
