"""``hysbys dlq list|replay``: look at dead-lettered messages and put them back.

Listing takes each message without acking it and closes the channel, so the
broker requeues every one: a list never removes anything.  A replay publishes
the message to the queue it came from (confirmed) and only then acks it in the
DLQ: a crash mid-replay can duplicate, never lose, and the inbox makes a
duplicate a no-op.
"""
from __future__ import annotations

import json
import sys

from shared import topology
from shared.bus import Bus, drain_queue
from shared.config import Settings

_DROP = ("x-error", "x-retries", "x-last-error", "x-dead-lettered-at", "x-original-queue",
         "x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason")


def _queues(args) -> list[str]:
    names = args.queue or [q.name for q in topology.QUEUES]
    return [n.removesuffix(topology.DLQ_SUFFIX)
            for n in names]


def _describe(message) -> dict:
    headers = message.headers or {}
    try:
        body = json.loads(message.body)
        event_type = body.get("type") if isinstance(body, dict) else None
    except (TypeError, ValueError):
        event_type = None
    return {"id": message.properties.get("message_id"), "type": event_type,
            "error": headers.get("x-error"), "retries": headers.get("x-retries", 0)}


def run(settings: Settings, args) -> int:
    bus = Bus(settings.broker_url, quorum=settings.quorum_queues)
    if bus.is_memory:
        print("hysbys: the embedded platform keeps its queues in memory, inside the running "
              "process; its dead letters are on the /ops page. Set HYSBYS_BROKER_URL to use "
              "this command against RabbitMQ.", file=sys.stderr)
        return 2
    with bus.connection() as conn:
        if args.dlq_command == "list":
            return _list(bus, conn, _queues(args), args.json)
        return _replay(bus, conn, _queues(args), args.message_id)


def _list(bus: Bus, conn, queues: list[str], as_json: bool) -> int:
    found = []
    for queue in queues:
        depth, _ = bus.queue_depth(conn, queue + topology.DLQ_SUFFIX)
        for message in drain_queue(bus, conn, queue + topology.DLQ_SUFFIX, limit=depth):
            found.append({"queue": queue, **_describe(message)})
        # drain_queue closed its channel without acking: everything is back in the DLQ
    if as_json:
        print(json.dumps(found))
    else:
        for row in found:
            print(f"{row['queue']:<20} {row['id']}  {row['type'] or '-':<28} {row['error']}")
        print(f"{len(found)} dead-lettered message(s)")
    return 0


def _replay(bus: Bus, conn, queues: list[str], only_id: str | None) -> int:
    replayed = 0
    for queue in queues:
        dlq = queue + topology.DLQ_SUFFIX
        depth, _ = bus.queue_depth(conn, dlq)
        for i, message in enumerate(drain_queue(bus, conn, dlq, limit=depth), 1):
            if only_id and message.properties.get("message_id") != only_id:
                continue
            headers = {k: v for k, v in (message.headers or {}).items() if k not in _DROP}
            bus.send_to_queue(conn, queue, message.body, headers,
                              message_id=message.properties.get("message_id"))
            message.ack()
            replayed += 1
            if i % 1000 == 0:
                print(f"  {queue}: {i}/{depth}", file=sys.stderr, flush=True)
    print(f"replayed {replayed} message(s)")
    return 0
