"""Whatever the audience, batch size and crash point: every eligible subscriber is
requested exactly once, and nobody else is."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.scheduler import campaigns
from services.scheduler.models import Subscriber
from services.scheduler.ticker import Ticker
from shared import events
from shared.db import utcnow
from shared.outbox import OutboxRow
from shared.tenancy import Tenant

NOW = utcnow().replace(microsecond=0)

subscriber_rows = st.lists(st.fixed_dictionaries({
    "phone": st.booleans(), "email": st.booleans(), "opted_out": st.booleans(),
    "round": st.sampled_from(["A", "B"])}), max_size=25)


class DiesOnce(Ticker):
    """Dies once, while building its ``crash_at``-th request (None: never)."""

    def __init__(self, db, crash_at: int | None, **kwargs):
        super().__init__(db, **kwargs)
        self.countdown = crash_at

    def _requested(self, campaign, occ, s, position=0):
        if self.countdown is not None:
            self.countdown -= 1
            if self.countdown == 0:
                raise ConnectionResetError("killed mid-batch")
        return super()._requested(campaign, occ, s, position)


def seed(db, rows: list[dict], channel: str, audience: dict) -> tuple[str, set[str]]:
    """A fresh tenant with ``rows`` as subscribers and a due broadcast; (campaign id, who
    should get it)."""
    tenant_id = str(uuid.uuid4())
    expected: set[str] = set()
    with db.transaction() as session:
        session.add(Tenant(id=tenant_id, slug=f"t-{tenant_id[:8]}", name="T",
                           config={"quiet_hours": None}))
        for n, row in enumerate(rows):
            sub = Subscriber(id=str(uuid.uuid4()), tenant_id=tenant_id,
                             phone=f"+4477009{n:05d}" if row["phone"] else None,
                             email=f"s{n}@example.com" if row["email"] else None,
                             attributes={"round": row["round"]}, opted_out=row["opted_out"],
                             created_at=NOW, updated_at=NOW)
            if not (sub.phone or sub.email):
                sub.phone = f"+4477008{n:05d}"
            session.add(sub)
            contact = sub.phone if channel == "sms" else sub.email
            if contact and not sub.opted_out and audience.get("round", row["round"]) == row["round"]:
                expected.add(contact)
        campaign = campaigns.create(session, tenant_id, {
            "name": "p", "kind": "broadcast", "template_id": uuid.uuid4(), "channel": channel,
            "send_at": NOW, "audience": audience, "personalisation": {}, "urgent": False}, NOW)
    return campaign.id, expected


def requested_for(db, campaign_id: str) -> list[str]:
    with db.read() as session:
        bodies = session.scalars(OutboxRow.__table__.select().with_only_columns(OutboxRow.body)
                                 .where(OutboxRow.event_type == "notification.requested"))
        data = [item["data"] for b in bodies for item in events.expand_body(json.loads(b))]
    return [d["recipient"] for d in data if d["campaign_id"] == campaign_id]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=subscriber_rows, batch=st.integers(1, 7), crash_at=st.none() | st.integers(1, 30),
       channel=st.sampled_from(["sms", "email"]),
       audience=st.sampled_from([{}, {"round": "A"}]))
def test_every_eligible_subscriber_is_requested_exactly_once_even_after_a_crash(
        scheduler, rows, batch, crash_at, channel, audience):
    db = scheduler.runtime.db
    campaign_id, expected = seed(db, rows, channel, audience)
    due = NOW + dt.timedelta(seconds=1)
    DiesOnce(db, crash_at, batch=batch).run_once(now=due)
    Ticker(db, batch=batch).run_once(now=due)
    Ticker(db, batch=batch).run_once(now=due)
    recipients = requested_for(db, campaign_id)
    assert sorted(recipients) == sorted(expected)
