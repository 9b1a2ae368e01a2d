"""The ticker writes one ``notification.requested`` per batch of recipients, not one per
recipient (DESIGN.md, "Events")."""
from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from services.scheduler.ticker import Ticker
from shared.outbox import OutboxRow
from tests.unit.scheduler.test_scheduler_ticker_properties import NOW, seed


def test_a_batch_of_recipients_is_one_event_carrying_them_all(scheduler):
    db = scheduler.runtime.db
    rows = [{"phone": True, "email": False, "opted_out": False, "round": "A"}] * 1500
    campaign_id, expected = seed(db, rows, "sms", {})
    due = NOW + dt.timedelta(seconds=1)
    Ticker(db, batch=1000).run_once(now=due)
    Ticker(db, batch=1000).run_once(now=due)
    with db.read() as session:
        bodies = [json.loads(b) for b in session.scalars(sa.select(OutboxRow.body).where(
            OutboxRow.event_type == "notification.requested").order_by(OutboxRow.seq))]
    assert [len(b["data"]["items"]) for b in bodies] == [1000, 500]
    assert {b["tenant_id"] for b in bodies} == {bodies[0]["tenant_id"]}
    recipients = [i["recipient"] for b in bodies for i in b["data"]["items"]]
    assert sorted(recipients) == sorted(expected)
    assert all(i["campaign_id"] == campaign_id for b in bodies for i in b["data"]["items"])
