"""Replies are personal data: gone after the tenant's retention period, kept before it."""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from services.inbound.models import Conversation, InboundMessage
from shared import retention


def test_replies_older_than_the_retention_period_are_purged_and_newer_ones_kept(inbound, tenant):
    now = dt.datetime.now(dt.timezone.utc)
    with inbound.runtime.db.transaction() as session:
        for days, sid in ((30, "SMold"), (1, "SMnew")):
            session.add(InboundMessage(
                id=str(uuid.uuid4()), tenant_id=tenant.id, provider="twilio",
                provider_reference=sid, from_number="+447700900123", to_number="+447700900999",
                body="STOP", received_at=now - dt.timedelta(days=days)))
        session.add(Conversation(tenant_id=tenant.id, recipient="+447700900123",
                                 notification_id=str(uuid.uuid4()),
                                 sent_at=now - dt.timedelta(days=30)))
    retention.purge(inbound.runtime.db, [retention.PersonalData(InboundMessage, "received_at"),
                                         retention.PersonalData(Conversation, "sent_at")])
    with inbound.runtime.db.read() as session:
        left = session.scalars(sa.select(InboundMessage.provider_reference)).all()
        contexts = session.scalars(sa.select(Conversation)).all()
    assert left == ["SMnew"] and contexts == []
