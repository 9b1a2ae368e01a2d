"""Declaring the topology on a broker an earlier release set up removes the bindings it dropped."""
from __future__ import annotations

import uuid

from shared import events, topology
from shared.bus import Bus, OutgoingMessage
from tests.conftest import eventually


def outcome(kind: str) -> events.Event:
    return events.make(f"notification.{kind}", uuid.uuid4(), notification_id=str(uuid.uuid4()),
                       status=kind, channel="sms")


def test_a_binding_an_earlier_release_made_is_removed_and_the_current_ones_kept(rabbit_url):
    bus = Bus(rabbit_url)
    with bus.connection() as conn:
        bus.declare(conn)
        # the release before 2026-11 bound every outcome to the callbacks queue
        conn.default_channel.queue_bind("notify.callbacks", topology.EVENTS_EXCHANGE,
                                        routing_key="notification.sent")
        bus.declare(conn)          # what a worker of this release does when it starts
        bus.publish(conn, [OutgoingMessage(str(e.id), e.type, e.to_json())
                           for e in (outcome("sent"), outcome("delivered"))])
        # the delivered one arrives; the sent one went only to the queues that want it
        eventually(lambda: bus.queue_depth(conn, "scheduler.events")[0] == 2,
                   message="both outcomes reached the scheduler's stats")
        assert bus.queue_depth(conn, "notify.callbacks")[0] == 1
        assert bus.queue_depth(conn, "inbound.events")[0] == 1
