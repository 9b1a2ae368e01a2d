"""What one v2 send asks the database: a count of statements, not a time.

Before the API path work (2026-12) a warm send took 8 statements in 2 transactions (12
round trips on PostgreSQL); docs/benchmarks.md, "The API path", has the breakdown."""
from __future__ import annotations

from notify_api_support import SMS_TEMPLATE

from tests.fakes.statements import counted

MAX_STATEMENTS = 3      # tenant stamp; template version + opt-out; the INSERT
MAX_TRANSACTIONS = 2    # authentication's read; the durable store


def send(client, headers, template_id):
    return client.post("/v2/notifications/sms", headers=headers, json={
        "phone_number": "07700900111", "template_id": template_id,
        "personalisation": {"name": "Dai", "bin type": "du"}})


def test_a_warm_send_takes_three_statements_in_two_transactions(notify, client, tenant):
    template = client.post("/api/templates", json=SMS_TEMPLATE, headers=tenant.live).get_json()
    assert send(client, tenant.live, template["id"]).status_code == 201   # fills the caches
    with counted(notify.runtime.db.engine) as trips:
        assert send(client, tenant.live, template["id"]).status_code == 201
    assert len(trips.statements) <= MAX_STATEMENTS, trips.statements
    assert trips.begins <= MAX_TRANSACTIONS and trips.ends <= MAX_TRANSACTIONS
    assert not any("usage_counters" in s for s in trips.statements), \
        "the daily and per-minute counts come from the process's lease"


def test_a_cold_send_reads_the_tenant_and_template_once_and_then_not_again(notify, client,
                                                                          tenant):
    template = client.post("/api/templates", json=SMS_TEMPLATE, headers=tenant.live).get_json()
    notify.runtime.tenant_cache.forget(tenant.id)
    with counted(notify.runtime.db.engine) as cold:
        assert send(client, tenant.live, template["id"]).status_code == 201
    with counted(notify.runtime.db.engine) as warm:
        assert send(client, tenant.live, template["id"]).status_code == 201
    assert any(s.startswith("SELECT api_keys.") for s in cold.statements)
    assert any(s.startswith("SELECT templates.id") for s in cold.statements)
    assert not any(s.startswith(("SELECT api_keys.", "SELECT templates.id"))
                   for s in warm.statements), warm.statements
