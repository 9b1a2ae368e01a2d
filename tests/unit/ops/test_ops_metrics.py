"""/metrics on notify reports every queue, its DLQ and each provider's circuit, at scrape time."""
from __future__ import annotations

from ops_support import set_provider_state

from shared import topology
from shared.metrics import METRICS, tenant_label


def scrape(notify, client) -> str:
    return client.get("/metrics").get_data(as_text=True)


def test_each_providers_circuit_state_is_one_for_its_state_and_zero_for_the_others(
        notify, client, metric):
    set_provider_state(notify, "twilio", "half-open", calls=3, errors=2, p50=120.0)
    text = scrape(notify, client)
    assert 'hysbys_provider_circuit_state{provider="twilio",state="half-open"} 1.0' in text
    assert metric("hysbys_provider_circuit_state", provider="twilio", state="open") == 0
    assert metric("hysbys_provider_circuit_state", provider="twilio", state="closed") == 0
    assert metric("hysbys_provider_recent_error_ratio", provider="twilio") == 2 / 3
    assert metric("hysbys_provider_state_age_seconds", provider="twilio") < 60


def test_a_circuit_that_closes_again_reads_closed_at_the_next_scrape(notify, client, metric):
    set_provider_state(notify, "notify", "open", calls=10, errors=10, p50=None)
    scrape(notify, client)
    set_provider_state(notify, "notify", "closed", calls=10, errors=0, p50=80.0)
    scrape(notify, client)
    assert metric("hysbys_provider_circuit_state", provider="notify", state="open") == 0
    assert metric("hysbys_provider_circuit_state", provider="notify", state="closed") == 1


def test_every_queue_and_dlq_is_reported_by_notify_not_only_its_own(notify, client, metric):
    with notify.runtime.bus.connection() as conn:
        notify.runtime.bus.send_to_queue(conn, "scheduler.events.dlq", "{}", {})
        notify.runtime.bus.send_to_queue(conn, "inbound.events", "{}", {})
    scrape(notify, client)
    for spec in topology.QUEUES:
        assert metric("hysbys_queue_messages", queue=spec.name) is not None, spec.name
        assert metric("hysbys_queue_messages", queue=spec.dlq) is not None, spec.dlq
    assert metric("hysbys_queue_messages", queue="scheduler.events.dlq") == 1
    assert metric("hysbys_queue_messages", queue="inbound.events") == 1


def test_the_tenant_label_is_the_slug_never_the_id(notify):
    from ops_support import add_tenant

    tenant = add_tenant(notify, "torfaen")
    with notify.runtime.db.read() as session:
        assert tenant_label(session, tenant.id) == "torfaen"
        assert tenant_label(session, "00000000-0000-0000-0000-000000000000") == "unknown"


def test_the_metrics_this_work_adds_are_registered():
    names = {m.name for m in METRICS.registry.collect()}
    assert {"hysbys_provider_circuit_state", "hysbys_provider_recent_error_ratio",
            "hysbys_provider_state_age_seconds", "hysbys_retention_purged_rows",
            "hysbys_retention_last_success_timestamp_seconds"} <= names
