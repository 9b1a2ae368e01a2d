"""The platform's one rule for text (shared.schemas) on the scheduler's API: a NUL (which
PostgreSQL cannot store) or an unknown field is a 400 naming the field, never a 500."""
from __future__ import annotations

import pytest

NUL_REFUSED = "must not contain NUL (\\u0000) characters"
ROUND = {"code": "A", "name": "Round A", "rrule": "FREQ=WEEKLY;BYDAY=TU", "start": "2099-01-06",
         "description": {"cy": "bagiau du", "en": "black bags"}}


@pytest.fixture
def tenant(new_tenant):
    return new_tenant("penfro")


@pytest.mark.parametrize("change,message", [
    ({"name": "Round\x00 A"}, f"name {NUL_REFUSED}"),
    ({"description": {"cy": "bagiau\x00", "en": "bags"}}, f"description.cy {NUL_REFUSED}"),
    ({"colour": "green"}, "Additional properties are not allowed (colour was unexpected)"),
])
def test_a_round_with_a_nul_or_an_unknown_field_is_a_400_naming_it_and_is_not_made(
        client, tenant, error_messages, change, message):
    resp = client.post("/api/rounds", headers=tenant.headers(), json={**ROUND, **change})
    assert resp.status_code == 400
    assert error_messages(resp) == [message]
    assert client.get("/api/rounds", headers=tenant.headers()).get_json()["rounds"] == []


def test_a_campaign_name_with_a_nul_is_a_400_naming_it(client, tenant, error_messages):
    resp = client.post("/api/campaigns", headers=tenant.headers(), json={
        "name": "Bins\x00", "template_id": "6f1c2a9e-0d4b-4c8e-9a51-3b7d2e8f4c10",
        "channel": "sms", "send_at": "2099-01-01T10:00:00Z"})
    assert resp.status_code == 400
    assert f"name {NUL_REFUSED}" in error_messages(resp)


@pytest.mark.parametrize("subscriber,message", [
    ({"phone": "07700900123", "attributes": {"ward": "Canol\x00"}},
     f"attributes {NUL_REFUSED} (ward does)"),
    ({"email": "sian\x00@example.cymru"}, f"email {NUL_REFUSED}"),
    ({"phone": "07700900123", "nickname": "Sian"},
     "Additional properties are not allowed (nickname was unexpected)"),
])
def test_a_subscriber_with_a_nul_or_an_unknown_field_is_a_400_naming_it(
        client, tenant, error_messages, subscriber, message):
    resp = client.post("/api/subscribers", headers=tenant.headers(), json=subscriber)
    assert resp.status_code == 400
    assert error_messages(resp) == [message]
    assert client.get("/api/subscribers", headers=tenant.headers()).get_json()["subscribers"] == []
