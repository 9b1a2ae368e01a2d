"""What the inbound service does with the events it consumes."""
from __future__ import annotations

import datetime as dt
import uuid

from inbound_support import CITIZEN, apply

from services.inbound import handlers
from services.inbound.models import Conversation
from services.inbound.replies import find_conversation
from shared import events, topology
from shared.events import Event
from shared.tenancy import TENANCY_HANDLERS


def sent(tenant_id: str, *, at: dt.datetime, recipient: str = CITIZEN, channel: str = "sms",
         appointment_id: str | None = None, campaign_id: str | None = None,
         type_: str = "notification.sent") -> Event:
    made = events.make(type_, tenant_id, notification_id=str(uuid.uuid4()), status="sent",
                       channel=channel, provider="twilio", recipient=recipient,
                       campaign_id=campaign_id, appointment_id=appointment_id)
    return Event(type=made.type, tenant_id=made.tenant_id, data=made.data, occurred_at=at)


def conversation(service, tenant_id: str, recipient: str = CITIZEN) -> Conversation | None:
    with service.runtime.db.read() as session:
        return find_conversation(session, tenant_id, recipient)


NOW = dt.datetime(2026, 11, 25, 18, 0, tzinfo=dt.UTC)


def test_the_handlers_cover_exactly_the_event_types_bound_to_the_inbound_queue():
    bound = {t for spec in topology.queues_for("inbound") for t in spec.event_types}
    assert set(handlers.routes()) == bound


def test_tenant_replication_uses_the_kernel_s_handlers():
    routes = handlers.routes()
    for event_type, kernel_handlers in TENANCY_HANDLERS.items():
        assert routes[event_type] == kernel_handlers


def test_a_text_sent_becomes_the_context_of_that_citizen_s_next_reply(inbound, tenant):
    appointment = str(uuid.uuid4())
    event = sent(tenant.id, at=NOW, appointment_id=appointment)
    apply(inbound, event)

    row = conversation(inbound, tenant.id)
    assert (row.notification_id, row.appointment_id, row.campaign_id, row.sent_at) == (
        str(event.data["notification_id"]), appointment, None, NOW)


def test_a_later_text_replaces_the_context(inbound, tenant):
    campaign = str(uuid.uuid4())
    apply(inbound, sent(tenant.id, at=NOW, appointment_id=str(uuid.uuid4())))
    later = sent(tenant.id, at=NOW + dt.timedelta(days=1), campaign_id=campaign)
    apply(inbound, later)

    row = conversation(inbound, tenant.id)
    assert (row.notification_id, row.campaign_id, row.appointment_id) == (
        str(later.data["notification_id"]), campaign, None)


def test_an_older_text_arriving_late_does_not_replace_a_newer_context(inbound, tenant):
    newer = sent(tenant.id, at=NOW)
    apply(inbound, newer)
    apply(inbound, sent(tenant.id, at=NOW - dt.timedelta(hours=1)))
    assert conversation(inbound, tenant.id).notification_id == str(newer.data["notification_id"])


def test_contexts_are_kept_per_tenant(inbound, tenant):
    other = str(uuid.uuid4())
    apply(inbound, sent(tenant.id, at=NOW))
    apply(inbound, sent(other, at=NOW + dt.timedelta(minutes=1)))
    assert conversation(inbound, tenant.id).sent_at == NOW
    assert conversation(inbound, other).sent_at == NOW + dt.timedelta(minutes=1)


def test_an_email_is_never_the_context_of_a_text_reply(inbound, tenant):
    apply(inbound, sent(tenant.id, at=NOW, channel="email", recipient="dinesydd@example.com"))
    assert conversation(inbound, tenant.id, "dinesydd@example.com") is None


def test_a_recipient_is_kept_in_e164_however_it_was_written(inbound, tenant):
    apply(inbound, sent(tenant.id, at=NOW, recipient="07700 900123"))
    assert conversation(inbound, tenant.id, CITIZEN) is not None


def test_the_reminder_s_reference_code_and_language_come_off_the_wire_into_the_context(
        inbound, tenant):
    appointment = str(uuid.uuid4())
    made = events.make("notification.sent", tenant.id, notification_id=str(uuid.uuid4()),
                       status="sent", channel="sms", provider="twilio", recipient=CITIZEN,
                       appointment_id=appointment, appointment_reference="RENAL-1001",
                       reply_code="4821", language="en")
    apply(inbound, made)   # through to_json/from_json: the kernel's schema carries them

    row = conversation(inbound, tenant.id)
    assert (row.appointment_id, row.appointment_reference, row.reply_code, row.language) == (
        appointment, "RENAL-1001", "4821", "en")
