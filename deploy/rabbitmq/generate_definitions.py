"""Write ``deploy/rabbitmq/definitions.json`` from ``shared/topology.py``.

The definitions are built from the very kombu declarations the workers make
(with quorum queues, as in production), so a node that boots with this file
and a worker that declares its queues never disagree about an argument
(RabbitMQ would answer PRECONDITION_FAILED).  ``tests/unit/test_deploy_files.py``
fails when the committed file differs from what this script produces.

    PYTHONPATH=. python3 deploy/rabbitmq/generate_definitions.py            # rewrite the file
    PYTHONPATH=. python3 deploy/rabbitmq/generate_definitions.py --check    # exit 1 if stale
    PYTHONPATH=. python3 deploy/rabbitmq/generate_definitions.py --no-users --stdout
                                                        # topology only, for a managed cluster
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
from pathlib import Path

from shared import topology

VHOST = "/"
OUTPUT = Path(__file__).with_name("definitions.json")

# Definitions imported at boot stop RabbitMQ from creating its default user, so
# the file brings one for docker compose: the well-known guest/guest, dev only.
# The salt is fixed so that the file is reproducible; the password is public anyway.
DEV_USER = ("guest", "guest")
_DEV_SALT = b"hysb"

# A safety net under the workers' own retry/DLQ path: a message that keeps
# crashing its consumer before it can be acked is dead-lettered after this many
# deliveries instead of looping forever.
DELIVERY_LIMIT = 20

# Dead letters expire DLQ_TTL_DAYS (shared/topology.py) after they were dead-lettered.  A
# policy, not an ``x-message-ttl`` queue argument: a queue's arguments cannot change
# once declared (RabbitMQ refuses the redeclaration), a policy applies to existing queues.


def rabbit_password_hash(password: str, salt: bytes = _DEV_SALT) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")


def _exchange(name: str, kind: str) -> dict:
    return {"name": name, "vhost": VHOST, "type": kind, "durable": True,
            "auto_delete": False, "internal": False, "arguments": {}}


def _queue(name: str, arguments: dict) -> dict:
    return {"name": name, "vhost": VHOST, "durable": True, "auto_delete": False,
            "arguments": dict(arguments)}


def _binding(source: str, queue: str, routing_key: str, arguments: dict | None = None) -> dict:
    return {"source": source, "vhost": VHOST, "destination": queue, "destination_type": "queue",
            "routing_key": routing_key, "arguments": dict(arguments or {})}


def _consumer_queues() -> tuple[list[dict], list[dict]]:
    queues, bindings = [], []
    for spec in topology.QUEUES:
        main, dlq = topology.kombu_queues(spec, quorum=True)
        queues.append(_queue(main.name, main.queue_arguments))
        queues.append(_queue(dlq.name, dlq.queue_arguments))
        # kombu keeps bindings in a set: sort them so that the file is reproducible.
        bindings += sorted((_binding(b.exchange.name, main.name, b.routing_key)
                            for b in main.bindings), key=lambda b: b["routing_key"])
    return queues, bindings


def _delay_queues() -> tuple[list[dict], list[dict]]:
    queues, bindings = [], []
    for q in topology.kombu_delay_queues(quorum=True):
        queues.append(_queue(q.name, q.queue_arguments))
        bindings.append(_binding(q.exchange.name, q.name, "", q.binding_arguments))
    return queues, bindings


def _policies() -> list[dict]:
    names = "|".join(re.escape(spec.name) for spec in topology.QUEUES)
    return [{"name": "hysbys-consumer-queues", "vhost": VHOST, "pattern": f"^({names})$",
             "apply-to": "queues", "priority": 10,
             "definition": {"delivery-limit": DELIVERY_LIMIT}},
            {"name": "hysbys-dead-letter-queues", "vhost": VHOST,
             "pattern": f"^({names}){re.escape(topology.DLQ_SUFFIX)}$",
             "apply-to": "queues", "priority": 10,
             "definition": {"message-ttl": topology.DLQ_TTL_DAYS * 24 * 3600 * 1000}},
            # the delay queues' at-least-once dead-lettering as a policy too: a queue declared
            # by a release before it cannot take new arguments, a policy reaches it
            {"name": "hysbys-delay-queues", "vhost": VHOST,
             "pattern": "^" + re.escape(topology.DELAY_EXCHANGE) + r"\.\d+s$",
             "apply-to": "queues", "priority": 10,
             "definition": {"dead-letter-strategy": "at-least-once",
                            "overflow": "reject-publish"}}]


def build_definitions(include_users: bool = True) -> dict:
    consumer_queues, consumer_bindings = _consumer_queues()
    delay_queues, delay_bindings = _delay_queues()
    definitions = {
        "vhosts": [{"name": VHOST}],
        "exchanges": [_exchange(topology.EVENTS_EXCHANGE, "topic"),
                      _exchange(topology.DELAY_EXCHANGE, "headers")],
        "queues": consumer_queues + delay_queues,
        "bindings": consumer_bindings + delay_bindings,
        "policies": _policies(),
    }
    if include_users:
        user, password = DEV_USER
        definitions["users"] = [{"name": user, "password_hash": rabbit_password_hash(password),
                                 "hashing_algorithm": "rabbit_password_hashing_sha256",
                                 "tags": ["administrator"], "limits": {}}]
        definitions["permissions"] = [{"user": user, "vhost": VHOST, "configure": ".*",
                                       "write": ".*", "read": ".*"}]
    return definitions


def render(definitions: dict) -> str:
    return json.dumps(definitions, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if definitions.json is not what this script writes")
    parser.add_argument("--stdout", action="store_true", help="print instead of writing the file")
    parser.add_argument("--no-users", action="store_true",
                        help="leave out the dev guest user (for clusters that manage their own)")
    args = parser.parse_args(argv)
    text = render(build_definitions(include_users=not args.no_users))
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    if args.stdout:
        sys.stdout.write(text)
    else:
        OUTPUT.write_text(text)
        print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
