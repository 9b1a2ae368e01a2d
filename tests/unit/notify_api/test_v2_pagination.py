"""/v2 lists page as GOV.UK Notify's do: 250 newest first, ``links.next`` with the filters kept."""
from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

from notify_api_support import new_tenant


def send(client, tenant, template_id, n: int, reference: str = "r"):
    return [client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": template_id, "reference": reference,
        "personalisation": {"name": str(i), "bin type": "du"}}).get_json()["id"]
        for i in range(n)]


def test_next_keeps_every_filter_and_moves_older_than_on(client, tenant, sms_template):
    ids = send(client, tenant, sms_template["id"], 3)
    page = client.get("/v2/notifications?status=created&status=sending&template_type=sms"
                      "&reference=r", headers=tenant.live).get_json()
    assert [n["id"] for n in page["notifications"]] == ids[::-1]
    query = parse_qs(urlsplit(page["links"]["next"]).query)
    assert query == {"status": ["created", "sending"], "template_type": ["sms"],
                     "reference": ["r"], "older_than": [ids[0]]}
    last = client.get(page["links"]["next"], headers=tenant.live).get_json()
    assert last["notifications"] == [] and "next" not in last["links"]


def test_an_unknown_older_than_gives_an_empty_page_not_an_error(client, tenant, sms_template):
    send(client, tenant, sms_template["id"], 1)
    r = client.get(f"/v2/notifications?older_than={uuid.uuid4()}", headers=tenant.live)
    assert r.status_code == 200 and r.get_json()["notifications"] == []


def test_another_tenants_id_is_never_a_usable_cursor(notify, client, tenant, sms_template):
    [theirs] = send(client, tenant, sms_template["id"], 1)
    other = new_tenant(notify, "ceredigion")
    r = client.get(f"/v2/notifications?older_than={theirs}", headers=other.live)
    assert r.get_json()["notifications"] == []
    r = client.get(f"/v2/received-text-messages?older_than={theirs}", headers=other.live)
    assert r.get_json()["received_text_messages"] == []
