"""``hysbys dlq list|replay|purge``: look at dead-lettered messages, put them back,
or throw away the ones that must never be replayed.

Listing takes each message without acking it and closes the channel, so the
broker requeues every one: a list never removes anything.  A replay publishes
the message to the queue it came from (confirmed) and only then acks it in the
DLQ: a crash mid-replay can duplicate, never lose, and the inbox makes a
duplicate a no-op.

A purge takes one queue's dead letters the same way, acks those it was asked to
remove (every one, or only the given message ids) and closes the channel, so the
rest go back in their order.  It needs ``--queue`` (never every DLQ at once) and
``--yes``: without it, it only says what it would remove and exits 1.  Each purge
logs one WARNING line (queue, count, ids asked for) for the audit trail, never a
body: dead letters hold recipients and personalisation.
"""
from __future__ import annotations

import json
import logging
import sys

from shared import topology
from shared.bus import Bus, drain_queue
from shared.config import Settings

log = logging.getLogger(__name__)

_DROP = ("x-error", "x-retries", "x-last-error", "x-dead-lettered-at", "x-original-queue",
         "x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason")


def _queues(args) -> list[str]:
    names = args.queue or [q.name for q in topology.QUEUES]
    return [n.removesuffix(topology.DLQ_SUFFIX)
            for n in names]


def _known_queue(name: str) -> str | None:
    """``name`` (with or without ``.dlq``) as a topology queue name, or None."""
    name = name.removesuffix(topology.DLQ_SUFFIX)
    return name if name in {q.name for q in topology.QUEUES} else None


def _describe(message) -> dict:
    headers = message.headers or {}
    try:
        body = json.loads(message.body)
        event_type = body.get("type") if isinstance(body, dict) else None
    except (TypeError, ValueError):
        event_type = None
    return {"id": message.properties.get("message_id"), "type": event_type,
            "error": headers.get("x-error"), "retries": headers.get("x-retries", 0)}


def _print_rows(rows: list[dict]) -> None:
    for row in rows:
        print(f"{row['queue']:<20} {row['id']}  {row['type'] or '-':<28} {row['error']}")


def run(settings: Settings, args) -> int:
    bus = Bus(settings.broker_url, quorum=settings.quorum_queues)
    if bus.is_memory:
        print("hysbys: the embedded platform keeps its queues in memory, inside the running "
              "process; its dead letters are on the /ops page. Set HYSBYS_BROKER_URL to use "
              "this command against RabbitMQ.", file=sys.stderr)
        return 2
    # every command: a mistyped name is one clear line, not the broker's 404 on a passive declare
    asked = [args.queue] if isinstance(args.queue, str) else (args.queue or [])
    for name in asked:
        if _known_queue(name) is None:
            print(f"hysbys: unknown queue {name!r}; the queues are "
                  f"{', '.join(q.name for q in topology.QUEUES)}", file=sys.stderr)
            return 2
    queue = _known_queue(args.queue) if args.dlq_command == "purge" else None
    with bus.connection() as conn:
        if args.dlq_command == "list":
            return _list(bus, conn, _queues(args), args.json)
        if args.dlq_command == "purge":
            return _purge(bus, conn, queue, args.message_id, args.yes)
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
        _print_rows(found)
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


def _purge(bus: Bus, conn, queue: str, only_ids: list[str] | None, confirmed: bool) -> int:
    """Remove ``queue``'s dead letters (or only ``only_ids``); a dry run unless confirmed.

    Only the messages in the DLQ when the purge starts are looked at: one
    dead-lettered while it runs stays for the operator to see.
    """
    dlq = queue + topology.DLQ_SUFFIX
    wanted = set(only_ids or ())
    depth, _ = bus.queue_depth(conn, dlq)
    chosen: list[dict] = []
    for i, message in enumerate(drain_queue(bus, conn, dlq, limit=depth), 1):
        if wanted and message.properties.get("message_id") not in wanted:
            continue
        chosen.append({"queue": queue, **_describe(message)})
        if confirmed:
            message.ack()
        if i % 1000 == 0:
            print(f"  {queue}: {i}/{depth}", file=sys.stderr, flush=True)
    # drain_queue closed its channel: whatever was not acked is back in the DLQ, in order
    _print_rows(chosen)
    if confirmed:
        log.warning("dlq purge: removed %d message(s) from %s%s", len(chosen), dlq,
                    f" (ids asked for: {', '.join(only_ids)})" if only_ids else "",
                    extra={"queue": dlq})
        print(f"removed {len(chosen)} message(s) from {dlq}")
    else:
        print(f"would remove {len(chosen)} message(s) from {dlq}; nothing removed. "
              "Add --yes to remove them.")
    seen = {row["id"] for row in chosen}
    missing = [i for i in dict.fromkeys(only_ids or ()) if i not in seen]
    if missing:
        print(f"hysbys: not found in {dlq}: {', '.join(missing)}", file=sys.stderr)
    return 0 if confirmed and not missing else 1
