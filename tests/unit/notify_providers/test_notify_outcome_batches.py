"""The dispatcher records a batch of sends as one outcome event per type and tenant, and the
items still carry what every consumer reads (campaign, recipient, appointment, language)."""
from __future__ import annotations

import json

import sqlalchemy as sa

from shared.outbox import OutboxRow


def outcome_rows(h) -> list[dict]:
    with h.db.read() as session:
        return [json.loads(r.body) for r in session.scalars(
            sa.select(OutboxRow).where(OutboxRow.event_type.like("notification.%"))
            .order_by(OutboxRow.seq))]


def test_a_dispatch_of_many_sends_writes_one_sent_event_per_tenant(make_notify):
    h = make_notify()
    first, second = h.tenant(["simulator"]), h.tenant(["simulator"])
    ids = [h.send(first, f"+4477009{i:05d}") for i in range(120)] + \
        [h.send(second, f"+4477008{i:05d}") for i in range(30)]
    while h.dispatcher.run_once():
        pass
    sent = [b for b in outcome_rows(h) if b["type"] == "notification.sent"]
    per_tenant = {}
    for body in sent:
        per_tenant.setdefault(body["tenant_id"], []).extend(body["data"]["items"])
    assert len(sent) < 10          # a handful of events, not 150
    assert sorted(per_tenant) == sorted([first, second])
    assert sorted(i["notification_id"] for items in per_tenant.values() for i in items) == \
        sorted(ids)
    assert {i["recipient"][:8] for i in per_tenant[second]} == {"+4477008"}
    assert all(i["language"] == "en" and i["channel"] == "sms" and i["status"] == "sent"
               for items in per_tenant.values() for i in items)
