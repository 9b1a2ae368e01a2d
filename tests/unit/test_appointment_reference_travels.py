"""The appointment's reference and reply code travel with its reminder: scheduler's
``notification.requested`` → notify's row → notify's ``notification.sent``."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from services.notify import tenants as notify_tenants
from services.notify.handlers import on_notification_requested, on_notifications_requested
from services.notify.models import Notification
from services.notify.sending import set_status
from services.notify.templates import create_template
from services.notify.wiring import build as build_notify
from shared import events
from shared.outbox import OutboxRow


@pytest.fixture
def notify(embedded_settings):
    svc = build_notify(embedded_settings)
    svc.runtime.migrate()
    with svc.runtime.db.transaction() as session:
        tenant = notify_tenants.create_tenant(session, svc.runtime.box, name="B", slug="bae",
                                              config={"quiet_hours": None})
        template = create_template(session, tenant.id, {
            "name": "t", "type": "sms", "body": {"en": "Clinic ((reply_code))",
                                                 "cy": "Clinig ((reply_code))"}})
    return svc, tenant.id, template.id


def reminder(tenant_id, template_id, language="en") -> events.Event:
    made = events.make("notification.requested", tenant_id, "cid",
                       notification_id=uuid.uuid4(), template_id=template_id, channel="sms",
                       recipient="+447700900123", language=language,
                       personalisation={"reply_code": "4821"}, appointment_id=uuid.uuid4(),
                       appointment_reference="RENAL-1001", reply_code="4821")
    return events.Event.from_json(made.to_json())     # as it comes off the wire


@pytest.mark.parametrize("batch", [False, True])
def test_notify_keeps_the_reference_and_code_and_puts_them_on_the_sent_event(notify, batch):
    svc, tenant_id, template_id = notify
    event = reminder(tenant_id, template_id)
    with svc.runtime.db.transaction() as session:
        if batch:
            on_notifications_requested([event], session)
        else:
            on_notification_requested(event, session)
    with svc.runtime.db.transaction() as session:
        row = session.get(Notification, str(event.data["notification_id"]))
        assert (row.appointment_reference, row.reply_code) == ("RENAL-1001", "4821")
        set_status(session, row, "sent", provider="simulator")
    with svc.runtime.db.read() as session:
        bodies = [r.body for r in session.scalars(sa.select(OutboxRow).order_by(OutboxRow.seq))]
    [sent] = [item for e in map(events.Event.from_json, bodies) for item in e.expand()
              if e.type == "notification.sent"]
    assert sent.data["appointment_id"] == event.data["appointment_id"]
    assert (sent.data["appointment_reference"], sent.data["reply_code"],
            sent.data["language"]) == ("RENAL-1001", "4821", "en")


def test_a_bilingual_reminder_says_so_on_its_sent_event(notify):
    svc, tenant_id, template_id = notify
    event = reminder(tenant_id, template_id, language=None)
    with svc.runtime.db.transaction() as session:
        on_notification_requested(event, session)
        row = session.get(Notification, str(event.data["notification_id"]))
        set_status(session, row, "sent", provider="simulator")
        assert row.language == "cy+en"
