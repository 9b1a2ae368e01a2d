"""Authentication as GOV.UK Notify does it: 401 without a token, 403 for a bad one,
404 for another tenant's notification."""
from __future__ import annotations

import time

import jwt
import pytest
from notifications_python_client.authentication import create_jwt_token

from services.notify import tenants
from services.notify.wiring import build


@pytest.fixture
def notify(embedded_settings):
    svc = build(embedded_settings)
    svc.runtime.migrate()
    yield svc
    svc.runtime.db.dispose()


@pytest.fixture
def client(notify):
    return notify.create_app().test_client()


def new_tenant(notify, slug: str):
    with notify.runtime.db.transaction() as session:
        return tenants.create_tenant(session, notify.runtime.box, name=slug.title(), slug=slug)


def bearer(api_key: str, **claims) -> dict:
    tenant_id, secret = api_key[-73:-37], api_key[-36:]
    if claims:
        token = jwt.encode({"iss": tenant_id, "iat": int(time.time()), **claims}, secret,
                           algorithm="HS256")
    else:
        token = create_jwt_token(secret, tenant_id)
    return {"Authorization": f"Bearer {token}"}


def errors(resp) -> tuple[int, str]:
    body = resp.get_json()
    assert body["status_code"] == resp.status_code
    return resp.status_code, body["errors"][0]["message"]


def test_a_request_without_a_token_is_401(client):
    assert errors(client.get("/v2/notifications")) == (
        401, "Unauthorized: authentication token must be provided")


def test_a_request_with_another_scheme_is_401(client):
    status, _ = errors(client.get("/v2/notifications", headers={"Authorization": "Basic abc"}))
    assert status == 401


def test_a_token_signed_with_the_wrong_secret_is_403(notify, client):
    t = new_tenant(notify, "penfro")
    forged = t.api_key[:-36] + "00000000-0000-0000-0000-000000000000"
    assert errors(client.get("/v2/notifications", headers=bearer(forged))) == (
        403, "Invalid token: API key not found")


def test_a_token_for_an_unknown_tenant_is_403(client):
    key = "x-" + "11111111-1111-1111-1111-111111111111" + "-" + "22222222-2222-2222-2222-222222222222"
    assert errors(client.get("/v2/notifications", headers=bearer(key))) == (
        403, "Invalid token: service not found")


def test_a_revoked_key_is_403_at_once(notify, client):
    t = new_tenant(notify, "penfro")
    assert client.get("/v2/notifications", headers=bearer(t.api_key)).status_code == 200
    with notify.runtime.db.transaction() as session:
        import sqlalchemy as sa

        from shared.tenancy import ApiKey
        key_id = session.scalars(sa.select(ApiKey.id).where(
            ApiKey.tenant_id == t.id, ApiKey.key_type == "live")).one()
        tenants.revoke_key(session, t.id, key_id)
    assert errors(client.get("/v2/notifications", headers=bearer(t.api_key))) == (
        403, "Invalid token: API key revoked")


@pytest.mark.parametrize("skew", [-31 - 5, 31 + 5])
def test_a_clock_more_than_30_seconds_off_is_403(notify, client, skew):
    t = new_tenant(notify, "penfro")
    headers = bearer(t.api_key, iat=int(time.time()) + skew)
    assert errors(client.get("/v2/notifications", headers=headers)) == (
        403, "Error: Your system clock must be accurate to within 30 seconds")


def test_a_garbage_token_is_403(client):
    status, _ = errors(client.get("/v2/notifications",
                                  headers={"Authorization": "Bearer not.a.jwt"}))
    assert status == 403


def test_one_tenant_never_reads_another_tenants_notification(notify, client):
    a, b = new_tenant(notify, "penfro"), new_tenant(notify, "ceredigion")
    template = client.post("/api/templates", headers=bearer(a.api_key), json={
        "name": "t", "type": "sms", "body": {"en": "Hi", "cy": "Helo"}}).get_json()
    sent = client.post("/v2/notifications/sms", headers=bearer(a.api_key), json={
        "phone_number": "07700900111", "template_id": template["id"]})
    assert sent.status_code == 201
    nid = sent.get_json()["id"]
    assert client.get(f"/v2/notifications/{nid}", headers=bearer(a.api_key)).status_code == 200
    assert errors(client.get(f"/v2/notifications/{nid}", headers=bearer(b.api_key))) == (
        404, "No result found")
    listed = client.get("/v2/notifications", headers=bearer(b.api_key)).get_json()
    assert listed["notifications"] == []
    assert client.get(f"/v2/template/{template['id']}",
                      headers=bearer(b.api_key)).status_code == 404


def test_admin_endpoints_need_the_admin_token(client, notify):
    assert client.post("/admin/tenants", json={"name": "x", "slug": "x"}).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert client.post("/admin/tenants", json={"name": "x", "slug": "x"},
                       headers=bad).status_code == 403
    ok = {"Authorization": f"Bearer {notify.runtime.settings.admin_token}"}
    r = client.post("/admin/tenants", json={"name": "X", "slug": "x"}, headers=ok)
    assert r.status_code == 201 and set(r.get_json()) == {"id", "slug", "api_key", "test_api_key"}
    assert client.post("/admin/tenants", json={"name": "X", "slug": "x"},
                       headers=ok).status_code == 409
    r = client.post("/admin/tenants", json={"name": "X", "slug": "Not A Slug"}, headers=ok)
    assert r.status_code == 400 and "slug" in r.get_json()["errors"][0]["message"]
