"""Dead letters carry recipients and personalisation: every DLQ drops them after 14 days."""
from __future__ import annotations

import json
import re
from pathlib import Path

from shared import topology

DEFINITIONS = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "definitions.json"


def _policy_of(queue: str, policies: list[dict]) -> dict | None:
    """The policy RabbitMQ applies to ``queue``: the highest-priority one whose pattern matches."""
    matching = [p for p in policies if p["apply-to"] in ("queues", "all")
                and re.search(p["pattern"], queue)]
    return max(matching, key=lambda p: p["priority"]) if matching else None


def test_every_dead_letter_queue_expires_its_messages_after_fourteen_days():
    policies = json.loads(DEFINITIONS.read_text())["policies"]
    for spec in topology.QUEUES:
        dlq = _policy_of(spec.dlq, policies)
        assert dlq is not None, f"{spec.dlq} has no policy"
        assert dlq["definition"]["message-ttl"] == 14 * 24 * 3600 * 1000
        # the consumer queue keeps its delivery limit and gets no TTL (a backlog is not expired)
        main = _policy_of(spec.name, policies)
        assert main["definition"] == {"delivery-limit": 20}
    for seconds in topology.DELAY_TIERS:      # retries waiting in a delay queue keep their own TTL
        delay = _policy_of(f"hysbys.delay.{seconds}s", policies)
        # only the at-least-once dead-lettering of hysbys-delay-queues, never a TTL
        assert delay["definition"] == {"dead-letter-strategy": "at-least-once",
                                       "overflow": "reject-publish"}


def test_the_ttl_is_a_policy_not_a_queue_argument_so_existing_queues_are_not_redeclared():
    queues = {q["name"]: q for q in json.loads(DEFINITIONS.read_text())["queues"]}
    for spec in topology.QUEUES:
        assert "x-message-ttl" not in queues[spec.dlq]["arguments"]
