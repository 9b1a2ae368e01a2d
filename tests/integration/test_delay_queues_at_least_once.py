"""Quorum delay queues dead-letter a retry back at least once (never dropped by the broker).

On the real RabbitMQ, in a throwaway vhost: what a worker with quorum queues declares,
a retry's round trip through a tier, and a broker whose delay queues an earlier release
declared without these arguments (the worker still starts; the policy covers them).
"""
from __future__ import annotations

import json
import logging
import subprocess
import uuid
from urllib.parse import urlsplit

import pytest

from shared import topology
from shared.bus import Bus
from tests.conftest import eventually

pytestmark = pytest.mark.integration


def queue_arguments(rabbit_url: str) -> dict[str, dict]:
    vhost = urlsplit(rabbit_url).path.lstrip("/")
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "arguments",
                          "--formatter", "json"], check=True, capture_output=True, text=True)
    return {q["name"]: _as_dict(q["arguments"]) for q in json.loads(out.stdout)}


def _as_dict(arguments) -> dict:
    """rabbitmqctl's JSON gives the arguments as [name, type, value] lists."""
    if isinstance(arguments, dict):
        return arguments
    return {a[0]: a[-1] for a in arguments}


def test_a_quorum_worker_declares_every_delay_tier_at_least_once_with_reject_publish(rabbit_url):
    bus = Bus(rabbit_url, quorum=True)
    with bus.connection() as conn:
        bus.declare(conn)
    declared = queue_arguments(rabbit_url)
    for tier in topology.DELAY_TIERS:
        args = declared[topology.delay_queue_name(tier)]
        assert args["x-queue-type"] == "quorum"
        assert args["x-dead-letter-strategy"] == "at-least-once"
        assert args["x-overflow"] == "reject-publish"
        assert args["x-message-ttl"] == tier * 1000
    # the consuming queues are untouched by it
    assert "x-dead-letter-strategy" not in declared["notify.requests"]


def test_a_retry_waits_in_its_tier_and_comes_back_to_its_queue(rabbit_url):
    bus = Bus(rabbit_url, quorum=True)
    message_id = str(uuid.uuid4())
    with bus.connection() as conn:
        bus.declare(conn)
        bus.delay(conn, "notify.requests", json.dumps({"id": message_id}),
                  {"x-attempt": 1}, seconds=0.5, message_id=message_id)
        assert bus.queue_depth(conn, topology.delay_queue_name(1))[0] == 1
        eventually(lambda: bus.queue_depth(conn, "notify.requests")[0] == 1, timeout=30,
                   message="the retry back in notify.requests")
        assert bus.queue_depth(conn, topology.delay_queue_name(1))[0] == 0
        got = conn.default_channel.basic_get("notify.requests", no_ack=True)
        assert got.properties["message_id"] == message_id


def test_delay_queues_an_earlier_release_declared_do_not_stop_a_worker(rabbit_url, caplog):
    old = Bus(rabbit_url, quorum=True)
    with old.connection() as conn:
        channel = conn.default_channel
        for tier in topology.DELAY_TIERS:     # the arguments before at-least-once
            channel.queue_declare(
                topology.delay_queue_name(tier), durable=True, auto_delete=False,
                arguments={"x-message-ttl": tier * 1000, "x-dead-letter-exchange": "",
                           "x-queue-type": "quorum"})
    caplog.set_level(logging.WARNING, logger="shared.bus")
    bus = Bus(rabbit_url, quorum=True)
    with bus.connection() as conn:
        bus.declare(conn)                     # must not raise PRECONDITION_FAILED
        assert bus.queue_depth(conn, "scheduler.events")[0] == 0
    assert sum("declared by an earlier release" in r.getMessage() for r in caplog.records) == \
        len(topology.DELAY_TIERS)
    # kept as they were: the hysbys-delay-queues policy (definitions.json) covers them
    assert "x-dead-letter-strategy" not in queue_arguments(rabbit_url)["hysbys.delay.30s"]
