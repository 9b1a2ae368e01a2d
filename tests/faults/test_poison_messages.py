"""Poison mid-run: a body that is not even UTF-8, an event that fails its schema, and a
well-formed request that can never be rendered (its template needs personalisation the
event lacks).  Each is dead-lettered with the reason while 20,000 others flow past;
once the template is fixed, ``hysbys dlq replay`` brings the third back and it is
sent, and the two that can never be read go back to the DLQ."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import requests
import sqlalchemy as sa
from kombu import Connection, Producer

from shared import events, topology
from shared.crypto import SecretBox
from tests.faults.harness import ROOT, TENANTS, assert_exactly_once

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _publish_poison(broker_url: str, tenant: dict) -> dict[str, str]:
    """Publish the three messages as a misbehaving producer would; {kind: message id}."""
    broken_schema = {"id": str(uuid.uuid4()), "type": "notification.requested", "version": 1,
                     "tenant_id": tenant["id"], "occurred_at": "2026-01-01T00:00:00+00:00",
                     "correlation_id": None, "data": {"notification_id": str(uuid.uuid4())}}
    unrenderable = events.make("notification.requested", tenant["id"], None,
                               notification_id=str(uuid.uuid4()), template_id=tenant["template_id"],
                               channel="sms", recipient="+447400999001", personalisation={})
    ids = {"undecodable": str(uuid.uuid4()), "schema": broken_schema["id"],
           "unrenderable": str(unrenderable.id)}
    bodies = {"undecodable": b"\x80\x81 not json, not even UTF-8",
              "schema": json.dumps(broken_schema).encode(),
              "unrenderable": unrenderable.to_json().encode()}
    with Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.default_channel, exchange=topology.events_exchange())
        for kind, body in bodies.items():
            producer.publish(body, routing_key="notification.requested", message_id=ids[kind],
                             content_type="application/json", content_encoding="binary",
                             delivery_mode=2)
    ids["unrenderable_notification"] = unrenderable.data["notification_id"]
    return ids


def _dlq(run, command: str) -> subprocess.CompletedProcess:
    argv = ["dlq", command, "--queue", "notify.requests"] + (["--json"] if command == "list" else [])
    return subprocess.run([sys.executable, "-m", "services.cli", *argv], env=run.env, cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=120)


def _dead_letters(run) -> dict[str, str]:
    return {row["id"]: row["error"] for row in json.loads(_dlq(run, "list").stdout)}


def test_poison_is_dead_lettered_with_its_reason_the_queue_flows_and_replay_sends_the_fixed_one(
        start_run):
    run = start_run()
    tenant = run.add_tenants([{}] * TENANTS)[0]
    run.begin()
    run.wait_handled(0.2)
    ids = _publish_poison(run.broker_url, tenant)
    run.wait_settled()

    tally = run.tally(simulator_calls=int(run.proc("notify-worker").metric(
        "hysbys_provider_calls_total", {"provider": "simulator"})))
    parked = _dead_letters(run)
    run.report("test_poison_is_dead_lettered_with_its_reason_the_queue_flows_and_replay_sends_"
               "the_fixed_one", "3 poison messages published into notify.requests mid-run", tally,
               dead_letters=parked)
    assert_exactly_once(tally, n=run.n)
    assert tally.by_status == {"delivered": run.n}
    assert set(parked) == {ids["undecodable"], ids["schema"], ids["unrenderable"]}, parked
    assert parked[ids["undecodable"]].startswith("poison: not JSON")
    assert parked[ids["schema"]].startswith("poison: schema") and "recipient" in parked[ids["schema"]]
    assert parked[ids["unrenderable"]].startswith("PermanentError") and "round" in \
        parked[ids["unrenderable"]]

    fixed = requests.patch(f"{run.platform.urls['notify']}/api/templates/{tenant['template_id']}",
                           headers=run.api(tenant), timeout=30,
                           json={"body": {"cy": "Casgliad biniau yfory.",
                                          "en": "Bin collection tomorrow."}})
    assert fixed.status_code == 200, fixed.text
    assert "replayed 3 message(s)" in _dlq(run, "replay").stdout

    def sent_and_reparked() -> bool:
        status = run.scalar("SELECT status FROM notify.notifications WHERE id = :id",
                            id=ids["unrenderable_notification"])
        return status == "delivered" and set(_dead_letters(run)) == {ids["undecodable"],
                                                                     ids["schema"]}
    run.wait_for(sent_and_reparked, "the fixed request sent and the poison parked again", 120)
    with run.engine.connect() as conn:
        body = conn.execute(sa.text("SELECT body FROM notify.notifications WHERE id = :id"),
                            {"id": ids["unrenderable_notification"]}).scalar()
    assert SecretBox(run.env["HYSBYS_SECRET_KEY"]).decrypt(body).endswith(   # encrypted at rest
        "Bin collection tomorrow.")
