"""The platform's one rule for text (shared.schemas) on notify's API: a NUL is a 400 naming
the field, an unknown field on the native API is a 400 naming it, and the two v2 sends
ignore unknown fields as GOV.UK Notify does (docs/decisions.md, "NUL in text")."""
from __future__ import annotations

import pytest
from notify_api_support import SMS_TEMPLATE, errors

NUL_REFUSED = "must not contain NUL (\\u0000) characters"


@pytest.mark.parametrize("change,field", [
    ({"name": "Bin\x00 day"}, "name"),
    ({"body": {"cy": "Helo\x00", "en": "Hello"}}, "body.cy"),
])
def test_a_nul_in_a_template_is_a_400_naming_the_field_and_nothing_is_made(
        client, tenant, change, field):
    def names() -> list[str]:
        return [t["name"] for t in client.get("/v2/templates", headers=tenant.live)
                .get_json()["templates"]]
    before = names()
    resp = client.post("/api/templates", headers=tenant.live, json={**SMS_TEMPLATE, **change})
    assert errors(resp) == (400, "ValidationError", f"{field} {NUL_REFUSED}")
    assert names() == before


def test_an_unknown_field_on_a_template_is_a_400_naming_it(client, tenant):
    resp = client.post("/api/templates", headers=tenant.live, json={**SMS_TEMPLATE, "colour": "red"})
    assert errors(resp) == (400, "ValidationError",
                            "Additional properties are not allowed (colour was unexpected)")


def test_a_nul_in_a_v2_send_s_reference_is_a_400_naming_it(client, tenant, sms_template):
    resp = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": sms_template["id"],
        "personalisation": {"name": "a", "bin type": "b"}, "reference": "ref\x00"})
    assert errors(resp) == (400, "ValidationError", f"reference {NUL_REFUSED}")


def test_an_unknown_field_on_a_v2_send_is_ignored_as_notify_ignores_it(
        client, tenant, sms_template):
    resp = client.post("/v2/notifications/sms", headers=tenant.live, json={
        "phone_number": "07700900111", "template_id": sms_template["id"],
        "personalisation": {"name": "a", "bin type": "b"}, "a_newer_clients_option": True})
    assert resp.status_code == 201, resp.get_json()
