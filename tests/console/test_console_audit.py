"""The audit log: console and API changes recorded with who, what, before and after;
never a secret, a recipient or message text in clear; readable by ``GET /api/audit``."""
from __future__ import annotations

import json
import uuid

from services.notify.console import audit
from shared import events
from tests.console.support import bearer, csrf_token

TEMPLATE = {"name": "Bins", "type": "sms",
            "body": {"cy": "Biniau yfory, ((name))", "en": "Bins tomorrow, ((name))"}}


def entries(client, api_key: str, **query) -> dict:
    r = client.get("/api/audit", headers=bearer(api_key), query_string=query)
    assert r.status_code == 200, r.text
    return r.json


def test_an_api_change_is_recorded_with_before_and_after_and_no_text_in_clear(console):
    council = console.council("penfro", roles=())
    api = console.client()
    r = api.post("/api/templates", json=TEMPLATE, headers=bearer(council.api_key))
    assert r.status_code == 201
    tid = r.json["id"]
    r = api.patch(f"/api/templates/{tid}", headers=bearer(council.api_key),
                  json={"body": {"cy": "Biniau heno, ((name))", "en": "Bins tonight, ((name))"}})
    assert r.status_code == 200
    api.post("/api/suppressions", headers=bearer(council.api_key),
             json={"channel": "sms", "recipient": "07700 900123"})
    page = entries(api, council.api_key)
    actions = [e["action"] for e in page["entries"]]
    assert actions[:2] == ["native.suppress", "native.update"] and "native.create" in actions
    update = page["entries"][1]
    assert update["actor"]["type"] == "api_key" and update["via"] == "api"
    assert update["target"] == {"type": "templates", "id": tid}
    assert update["before"]["version"] == 1 and update["after"]["version"] == 2
    assert update["before"]["body"]["cy"] != update["after"]["body"]["cy"]
    text = json.dumps(page)
    for secret in ("Biniau", "Bins tonight", "07700", "+447700900123", council.api_key[-36:]):
        assert secret not in text


def test_sends_are_not_audit_entries(console):
    council = console.council("penfro", roles=())
    api = console.client()
    tid = api.post("/api/templates", json=TEMPLATE, headers=bearer(council.api_key)).json["id"]
    r = api.post("/v2/notifications/sms", headers=bearer(council.api_key), json={
        "phone_number": "07700 900123", "template_id": tid, "personalisation": {"name": "Siân"}})
    assert r.status_code == 201
    assert [e["action"] for e in entries(api, council.api_key)["entries"]] == ["native.create"]


def test_a_console_change_names_the_person_and_the_log_is_paged(console):
    council = console.council("penfro", roles=("admin",))
    client = console.signed_in(council, "admin")
    for n in range(3):
        page = client.get("/console/api-keys/new")
        r = client.post("/console/api-keys/new", data={
            "name": f"System {n}", "key_type": "test", "csrf_token": csrf_token(page.text)})
        assert r.status_code == 200
    api = console.client()
    first = entries(api, council.api_key, page_size=2)
    assert [e["action"] for e in first["entries"]] == ["api_key.created"] * 2
    assert first["entries"][0]["actor"] == {"type": "staff", "id": council.staff["admin"]["id"],
                                            "label": council.staff["admin"]["email"]}
    assert first["entries"][0]["after"] == {"name": "System 2", "key_type": "test"}
    older = first["links"]["next"].split("?", 1)[1]
    second = api.get("/api/audit?" + older, headers=bearer(council.api_key)).json
    assert [(e["after"] or {}).get("name") for e in second["entries"]][:1] == ["System 0"]
    html = client.get("/console/audit").text
    assert "api_key.created" in html and council.staff["admin"]["email"] in html


def test_each_tenant_reads_only_its_own_log(console):
    a = console.council("penfro", roles=("admin",))
    b = console.council("ceredigion", roles=())
    console.signed_in(a, "admin")             # a sign-in is an entry of a's
    assert entries(console.client(), b.api_key)["entries"] == []
    assert entries(console.client(), a.api_key)["entries"]


def test_bad_paging_is_a_400_naming_the_field(console):
    council = console.council("penfro", roles=())
    r = console.client().get("/api/audit?page_size=0", headers=bearer(council.api_key))
    assert r.status_code == 400 and "page_size" in r.text


def test_another_services_change_arrives_once_as_an_event(console):
    council = console.council("penfro", roles=())
    event = events.make("audit.recorded", council.id, None, service="scheduler", via="api",
                        actor={"type": "api_key", "id": "k1", "label": "k1"},
                        action="campaign.started", target={"type": "campaign", "id": "c1"},
                        before={"status": "draft"}, after={"status": "running",
                                                           "body": "secret words"})
    for _ in range(2):                       # redelivered: stored once
        with console.db.transaction() as s:
            audit.apply_audit_event(event, s)
    got = entries(console.client(), council.api_key)["entries"]
    assert len(got) == 1 and got[0]["service"] == "scheduler"
    assert got[0]["after"]["status"] == "running" and "secret words" not in json.dumps(got)


def test_redaction():
    assert audit.redact({"password": "x", "api_key": "k", "config": {"webhook_secret": "s"},
                         "body": {"cy": "Helo", "en": "Hi"}, "name": "Bins",
                         "phone_number": "+447700900000", "id": str(uuid.UUID(int=1))}) == {
        "password": "[redacted]", "api_key": "[redacted]",
        "config": {"webhook_secret": "[redacted]"},
        "body": {"cy": audit.fingerprint("Helo"), "en": audit.fingerprint("Hi")},
        "name": "Bins", "phone_number": "[redacted]", "id": str(uuid.UUID(int=1))}


def test_a_scheduler_change_reaches_notifys_audit_log_through_the_bus(platform):
    """shared.audit.publish in the scheduler's transaction → its outbox → the bus →
    notify.events → audit_log, read by GET /api/audit; on both stacks (memory + SQLite,
    RabbitMQ + PostgreSQL)."""
    import time

    import requests

    from shared import audit as shared_audit
    from tests.console.support import live_council

    live = platform
    live.url = platform.urls()["notify"]
    council = live_council(live, "penfro", roles=())
    with live.scheduler.runtime.db.transaction() as s:
        shared_audit.publish(s, tenant_id=council.id, service="scheduler",
                             action="campaign.paused",
                             actor={"type": "api_key", "id": "k1", "label": "crm"},
                             target={"type": "campaign", "id": "c-1"},
                             before={"status": "running"},
                             after={"status": "paused", "body": {"cy": "Helo", "en": "Hi"}})
    live.scheduler.runtime.relay.nudge.set()
    deadline = time.monotonic() + 20
    found = []
    while time.monotonic() < deadline and not found:
        r = requests.get(f"{live.url}/api/audit", headers=bearer(council.api_key), timeout=10)
        found = [e for e in r.json()["entries"] if e["action"] == "campaign.paused"]
        time.sleep(0.1)
    assert found, "the scheduler's audit event did not arrive"
    entry = found[0]
    assert entry["service"] == "scheduler" and entry["actor"]["label"] == "crm"
    assert entry["before"] == {"status": "running"}
    assert entry["after"]["body"]["cy"] == shared_audit.fingerprint("Helo")


def test_an_enormous_older_than_is_a_400_not_a_server_error(console):
    council = console.council("penfro", roles=())
    r = console.client().get(f"/api/audit?older_than={2**70}", headers=bearer(council.api_key))
    assert r.status_code == 400 and "older_than" in r.text


def test_a_change_through_the_schedulers_and_inbounds_own_apis_reaches_the_audit_log(platform):
    """Every change by a tenant's key through the scheduler's and inbound's APIs (their
    one after-request hook, shared.audit.install_api_hook) is in notify's audit log,
    with the key and the target, the words fingerprinted; a read is not; both stacks."""
    import time

    import requests

    from shared import audit as shared_audit
    from tests.console.support import live_council

    live = platform
    urls = platform.urls()
    live.url = urls["notify"]
    council = live_council(live, "penfro", roles=())
    headers = bearer(council.api_key)
    r = requests.post(f"{urls['scheduler']}/api/rounds", headers=headers, timeout=10, json={
        "code": "TUE-A", "name": "Tuesday A", "rrule": "FREQ=WEEKLY;BYDAY=TU",
        "start": "2026-12-01"})
    assert r.status_code in (200, 201), r.text
    r = requests.put(f"{urls['inbound']}/api/reply-texts", headers=headers, timeout=10, json={
        "texts": {"help": {"cy": "Help gan Gyngor Penfro", "en": "Help from Pembrokeshire"}}})
    assert r.status_code == 200, r.text
    requests.get(f"{urls['scheduler']}/api/rounds", headers=headers, timeout=10)
    wanted = {"scheduler", "inbound"}
    deadline, found = time.monotonic() + 30, {}
    while time.monotonic() < deadline and set(found) != wanted:
        r = requests.get(f"{live.url}/api/audit", headers=headers, timeout=10)
        found = {e["service"]: e for e in r.json()["entries"] if e["service"] in wanted}
        time.sleep(0.2)
    assert set(found) == wanted, f"audit entries arrived only from {sorted(found)}"
    rounds, texts = found["scheduler"], found["inbound"]
    assert rounds["actor"]["type"] == "api_key" and rounds["via"] == "api"
    assert rounds["target"]["type"] == "rounds" and rounds["after"]["code"] == "TUE-A"
    assert texts["after"]["texts"]["help"]["cy"] == shared_audit.fingerprint(
        "Help gan Gyngor Penfro")
    entries_now = requests.get(f"{live.url}/api/audit", headers=headers, timeout=10).json()
    assert not [e for e in entries_now["entries"] if e["action"].endswith("list_rounds")]
    assert "Pembrokeshire" not in json.dumps(entries_now)
