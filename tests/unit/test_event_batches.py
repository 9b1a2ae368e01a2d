"""The batched event contract (DESIGN.md, "Events"): an event of a notification type carries
up to 1,000 items of one type for one tenant; a transaction's outcomes become one event per
type and tenant; consumers see one item-event per item."""
from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from services.notify.wiring import MIGRATIONS
from shared import events, inbox, outbox
from shared.events import MAX_ITEMS, EventError
from shared.outbox import OutboxRow
from shared.runtime import Runtime
from shared.tenancy import Tenant

TENANT = uuid.UUID("11111111-1111-1111-1111-111111111111")


def sent_item(n: int, **extra) -> dict:
    return {"notification_id": uuid.UUID(int=n + 1), "status": "sent", "channel": "sms",
            "recipient": f"+4477009{n:05d}", **extra}


@pytest.fixture
def runtime(embedded_settings):
    rt = Runtime.build(embedded_settings, "notify", MIGRATIONS)
    rt.migrate()
    yield rt
    rt.db.dispose()


def rows(rt: Runtime) -> list[OutboxRow]:
    with rt.db.read() as session:
        return list(session.scalars(sa.select(OutboxRow).order_by(OutboxRow.seq)))


def test_a_batch_round_trips_and_each_item_is_checked_by_its_type_schema():
    [batch] = events.batches("notification.sent", TENANT, [sent_item(i) for i in range(3)],
                             correlation_id="run-1")
    back = events.Event.from_json(batch.to_json())
    assert back.batched and back.id == batch.id and back.tenant_id == TENANT
    assert [item["recipient"] for item in back.items] == ["+447700900000", "+447700900001",
                                                          "+447700900002"]
    bad = events.Event(type="notification.sent", tenant_id=TENANT,
                       data={"items": [sent_item(0), {"status": "sent"}]})
    with pytest.raises(EventError, match="notification_id"):
        bad.to_json()


def test_a_batch_holds_at_most_a_thousand_items_and_batches_split_longer_lists():
    made = events.batches("notification.requested", TENANT, [{"n": i} for i in range(2500)])
    assert [len(e.items) for e in made] == [MAX_ITEMS, MAX_ITEMS, 500]
    assert len({e.id for e in made}) == 3
    over = events.Event(type="notification.sent", tenant_id=TENANT,
                        data={"items": [sent_item(i) for i in range(MAX_ITEMS + 1)]})
    with pytest.raises(EventError, match="items"):
        events.Event.from_json(json.dumps({**json.loads(events.batches(
            "notification.sent", TENANT, [sent_item(0)])[0].to_json()),
            "data": json.loads(json.dumps(over.data, default=str))}))
    with pytest.raises(EventError, match="do not carry batches"):
        events.batches("subscriber.opted_out", TENANT, [{"recipient": "+447700900123"}])


def test_an_event_from_before_batches_is_read_as_a_batch_of_one():
    old = events.make("notification.sent", TENANT, "cid-1", **sent_item(7))
    back = events.Event.from_json(old.to_json())
    assert not back.batched
    assert back.items == [back.data]
    assert back.expand() == [back]


def test_expanding_gives_each_item_a_stable_id_and_its_own_correlation_id():
    [batch] = events.batches("notification.sent", TENANT,
                             [sent_item(0, correlation_id="req-a"), sent_item(1)],
                             correlation_id="run-1")
    once, again = batch.expand(), events.Event.from_json(batch.to_json()).expand()
    assert [e.id for e in once] == [e.id for e in again]
    assert len({e.id for e in once} | {batch.id}) == 3
    assert [e.correlation_id for e in once] == ["req-a", "run-1"]
    assert all(e.type == "notification.sent" and e.tenant_id == TENANT for e in once)
    assert [events.expand_body(json.loads(batch.to_json()))[i]["data"]["recipient"]
            for i in (0, 1)] == ["+447700900000", "+447700900001"]


def test_a_transactions_items_become_one_outbox_event_per_type_and_tenant(runtime):
    other = uuid.uuid4()
    with runtime.db.transaction() as session:
        for i in range(1200):
            outbox.collect(session, "notification.sent", TENANT, sent_item(i))
        for i in range(3):
            outbox.collect(session, "notification.sent", other, sent_item(i))
            outbox.collect(session, "notification.delivered", TENANT,
                           sent_item(i, status="delivered"), correlation_id="c")
        assert outbox.collected(session) == 1206
    made = [(r.event_type, len(json.loads(r.body)["data"]["items"]),
             json.loads(r.body)["tenant_id"]) for r in rows(runtime)]
    assert sorted(made) == sorted([
        ("notification.sent", 1000, str(TENANT)), ("notification.sent", 200, str(TENANT)),
        ("notification.sent", 3, str(other)), ("notification.delivered", 3, str(TENANT))])


def test_a_rolled_back_transaction_writes_none_of_its_items(runtime):
    with pytest.raises(RuntimeError), runtime.db.transaction() as session:
        outbox.collect(session, "notification.sent", TENANT, sent_item(0))
        raise RuntimeError("the domain change failed")
    with runtime.db.transaction() as session:
        outbox.collect(session, "notification.sent", TENANT, sent_item(1))
    [row] = rows(runtime)
    assert [i["recipient"] for i in json.loads(row.body)["data"]["items"]] == ["+447700900001"]


def test_only_batched_types_are_collected(runtime):
    with runtime.db.transaction() as session, pytest.raises(EventError):
        outbox.collect(session, "tenant.changed", TENANT, {"slug": "x"})


def store_as_tenant(calls: list):
    def handle(event, session):
        calls.append(event.id)
        session.add(Tenant(id=str(event.data["notification_id"]), slug=event.data["recipient"],
                           name="x", config={}))
    return handle


def tenants(rt: Runtime) -> set[str]:
    with rt.db.read() as session:
        return set(session.scalars(sa.select(Tenant.slug)))


def test_a_consumer_applies_a_batch_once_and_a_redelivered_batch_is_a_no_op(runtime):
    calls: list = []
    consumer = inbox.dispatcher(runtime.db, "t", {"notification.sent": [store_as_tenant(calls)]})
    [batch] = events.batches("notification.sent", TENANT, [sent_item(i) for i in range(300)])
    wire = events.Event.from_json(batch.to_json())
    consumer.batch([wire])
    consumer.batch([wire])          # redelivered
    consumer(wire)                  # and once more, one at a time
    assert len(tenants(runtime)) == 300
    assert len(calls) == 300 and len(set(calls)) == 300
    with runtime.db.read() as session:
        claimed = session.scalars(sa.select(inbox.InboxRow.event_id)).all()
    assert claimed == [str(batch.id)]     # one inbox row for the 300 items


def test_a_handlers_batch_form_gets_every_item_of_its_type_at_once(runtime):
    seen: list[int] = []

    def one(event, session):
        seen.append(1)

    route = inbox.Route(one, many=lambda evs, session: seen.append(len(evs)))
    consumer = inbox.dispatcher(runtime.db, "t", {"notification.sent": [route]})
    first, second = (events.batches("notification.sent", TENANT,
                                    [sent_item(i + k) for i in range(40)])[0] for k in (0, 40))
    consumer.batch([first, second])
    assert seen == [80]


def test_relevance_is_decided_per_item_and_keeps_a_batch_with_any_wanted_item(runtime):
    calls: list = []
    route = inbox.Route(store_as_tenant(calls), relevant=lambda items, session: {
        str(e.id) for e in items if e.data["recipient"].endswith("7")})
    consumer = inbox.dispatcher(runtime.db, "t", {"notification.sent": [route]})
    wanted = events.batches("notification.sent", TENANT, [sent_item(i) for i in range(10)])[0]
    unwanted = events.batches("notification.sent", TENANT,
                              [sent_item(i) for i in range(10, 17)])[0]
    consumer.batch([wanted, unwanted])
    with runtime.db.read() as session:
        claimed = set(session.scalars(sa.select(inbox.InboxRow.event_id)))
    assert claimed == {str(wanted.id)}
