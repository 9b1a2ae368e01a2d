"""An inbound number belongs to one tenant: a reply to it is that council's to read."""
from __future__ import annotations

from notify_api_support import errors, new_tenant

ADMIN = {"Authorization": "Bearer test-admin-token"}
NUMBER = "+447700900500"


def numbers_of(client, tenant_id) -> list[str]:
    return client.get(f"/admin/tenants/{tenant_id}", headers=ADMIN).get_json()["config"][
        "inbound_numbers"]


def test_a_number_another_tenant_has_is_refused_with_a_409_that_names_the_field_and_the_tenant(
        notify, client):
    penfro = new_tenant(notify, "penfro", inbound_numbers=[NUMBER])
    caerdydd = new_tenant(notify, "caerdydd")
    resp = client.patch(f"/admin/tenants/{caerdydd.id}", headers=ADMIN,
                        json={"inbound_numbers": ["07700 900500"]})
    assert errors(resp) == (409, "ConflictError", "inbound_numbers: +447700900500 is already "
                            "the inbound number of tenant 'penfro'; remove it there first")
    assert numbers_of(client, caerdydd.id) == []
    assert numbers_of(client, penfro.id) == [NUMBER]

    resp = client.post("/admin/tenants", headers=ADMIN, json={
        "name": "Powys", "slug": "powys", "config": {"inbound_numbers": [NUMBER]}})
    assert errors(resp)[:2] == (409, "ConflictError")
    assert "powys" not in [t["slug"] for t in client.get("/admin/tenants", headers=ADMIN).get_json()]


def test_a_number_moves_once_its_old_tenant_lets_it_go_or_is_archived(notify, client):
    penfro = new_tenant(notify, "penfro", inbound_numbers=[NUMBER])
    caerdydd = new_tenant(notify, "caerdydd")
    assert client.patch(f"/admin/tenants/{penfro.id}", headers=ADMIN,
                        json={"inbound_numbers": []}).status_code == 200
    assert client.patch(f"/admin/tenants/{caerdydd.id}", headers=ADMIN,
                        json={"inbound_numbers": [NUMBER, "07700 900500"]}).status_code == 200
    assert numbers_of(client, caerdydd.id) == [NUMBER], "each number once"

    assert client.patch(f"/admin/tenants/{caerdydd.id}", headers=ADMIN,
                        json={"active": False}).status_code == 200
    assert client.patch(f"/admin/tenants/{penfro.id}", headers=ADMIN,
                        json={"inbound_numbers": [NUMBER]}).status_code == 200
    resp = client.patch(f"/admin/tenants/{caerdydd.id}", headers=ADMIN, json={"active": True})
    assert errors(resp)[:2] == (409, "ConflictError"), "brought back, it would take penfro's"
