"""Tenants, keys and templates are kept per process, and a change is seen at once.

Two NotifyService instances on one database stand for two API processes: each has
its own engine, tenant cache, template cache and counters (nothing in memory shared)."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from notify_api_support import errors, new_tenant

from services.notify.wiring import build
from shared import events
from shared.tenancy import ApiKey, Tenant, apply_api_key_revoked, authenticate
from shared.tenant_cache import CachedTenant, TenantCache

ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
def other(embedded_settings, notify):
    """A second API process on the same database."""
    svc = build(embedded_settings)
    yield svc
    svc.runtime.db.dispose()


@pytest.fixture
def other_client(other):
    return other.create_app().test_client()


def send(client, headers, template_id, name="Dai"):
    return client.post("/v2/notifications/sms", headers=headers, json={
        "phone_number": "07700900111", "template_id": template_id,
        "personalisation": {"name": name, "bin type": "du"}})


def live_key_id(notify, tenant_id):
    with notify.runtime.db.read() as session:
        return session.scalars(sa.select(ApiKey.id).where(
            ApiKey.tenant_id == tenant_id, ApiKey.key_type == "live")).one()


def test_a_key_revoked_in_one_process_is_refused_by_the_next_request_in_another(
        notify, client, other, other_client, tenant, sms_template):
    assert send(other_client, tenant.live, sms_template["id"]).status_code == 201  # cached there
    key = live_key_id(notify, tenant.id)
    assert client.delete(f"/admin/tenants/{tenant.id}/keys/{key}",
                         headers=ADMIN).status_code in (200, 204)
    assert errors(send(other_client, tenant.live, sms_template["id"])) == \
        (403, "AuthError", "Invalid token: API key revoked")
    assert send(other_client, tenant.test, sms_template["id"]).status_code == 201, \
        "the tenant's other key still works"


def test_a_tenant_archived_in_one_process_is_refused_at_once_in_another(
        notify, client, other_client, tenant, sms_template):
    assert send(other_client, tenant.live, sms_template["id"]).status_code == 201
    assert client.patch(f"/admin/tenants/{tenant.id}", json={"active": False},
                        headers=ADMIN).status_code == 200
    assert errors(send(other_client, tenant.live, sms_template["id"])) == \
        (403, "AuthError", "Invalid token: service is archived")


def test_a_tenant_setting_changed_in_one_process_holds_at_once_in_another(
        notify, client, other_client, tenant, sms_template):
    assert send(other_client, tenant.live, sms_template["id"]).status_code == 201
    client.patch(f"/admin/tenants/{tenant.id}", headers=ADMIN, json={
        "sms_senders": [{"sms_sender": "Penfro", "is_default": True}]})
    r = send(other_client, tenant.live, sms_template["id"])
    assert r.get_json()["content"]["from_number"] == "Penfro"


def test_a_template_edited_in_one_process_is_sent_in_its_new_words_by_the_next_send_in_another(
        notify, client, other_client, tenant, sms_template):
    first = send(other_client, tenant.live, sms_template["id"]).get_json()
    assert first["template"]["version"] == 1
    r = client.patch(f"/api/templates/{sms_template['id']}", headers=tenant.live, json={
        "body": {"cy": "Helo ((name)), newydd ((bin type)).", "en": "Hi ((name)), new ((bin type))."}})
    assert r.status_code == 200, r.get_data(as_text=True)
    second = send(other_client, tenant.live, sms_template["id"]).get_json()
    assert second["template"]["version"] == 2
    assert "newydd" in second["content"]["body"] and "new du" in second["content"]["body"]


def test_an_archived_template_is_not_sent_from_a_process_that_cached_it(
        notify, client, other_client, tenant, sms_template):
    assert send(other_client, tenant.live, sms_template["id"]).status_code == 201
    client.patch(f"/api/templates/{sms_template['id']}", headers=tenant.live,
               json={"archived": True})
    assert errors(send(other_client, tenant.live, sms_template["id"])) == \
        (400, "BadRequestError", "Template not found")


def test_a_cached_template_is_never_another_tenants(notify, client, tenant, sms_template):
    other_tenant = new_tenant(notify, slug="caerdydd")
    assert send(client, tenant.live, sms_template["id"]).status_code == 201
    assert errors(send(client, other_tenant.live, sms_template["id"])) == \
        (400, "BadRequestError", "Template not found")


def test_a_replica_refuses_a_key_as_soon_as_its_revocation_is_applied(notify, tenant):
    """inbound and the scheduler apply ``api_key.revoked`` without a new revision: the
    stamp counts revoked keys, so their cached copy is not trusted past it."""
    from notifications_python_client.authentication import create_jwt_token

    cache = TenantCache()
    header = "Bearer " + create_jwt_token(tenant.api_key[-36:], tenant.id)
    box, db = notify.runtime.box, notify.runtime.db
    with db.read() as session:
        assert authenticate(session, box, header, cache).key_type == "live"
    key = live_key_id(notify, tenant.id)
    with db.transaction() as session:
        revision = session.get(Tenant, tenant.id).revision
        apply_api_key_revoked(events.make("api_key.revoked", tenant.id, None, key_id=key,
                                          revoked_at=dt.datetime(2026, 12, 3, 10, tzinfo=dt.UTC)), session)
    with db.read() as session:
        assert session.get(Tenant, tenant.id).revision == revision
        with pytest.raises(Exception, match="API key revoked"):
            authenticate(session, box, header, cache)


def test_the_tenant_cache_keeps_at_most_its_size():
    cache = TenantCache(size=2)
    for tenant_id in "abc":
        cache.put(tenant_id, (1,), CachedTenant(stamp=(1,), tenant=None, keys=()))
    assert len(cache) == 2
    assert cache.get("a", (1,)) is None and cache.get("c", (1,)) is not None


def test_the_template_cache_answers_only_for_its_tenant_and_version_and_keeps_at_most_its_size():
    from services.notify.models import Template
    from services.notify.templates import TemplateCache

    cache = TemplateCache(size=2)
    kept = cache.put(Template(id="t1", tenant_id="penfro", name="Bins", type="sms",
                              version=3, body_en="Bins", body_cy="Biniau"))
    assert cache.get("t1", "penfro", 3) is kept
    assert cache.get("t1", "caerdydd", 3) is None, "another tenant asking for the same id"
    assert cache.get("t1", "penfro", 4) is None, "the template was edited since"
    for template_id in ("t2", "t3"):
        cache.put(Template(id=template_id, tenant_id="penfro", name="x", type="sms",
                           version=1, body_en="x", body_cy="x"))
    assert len(cache.entries) == 2 and cache.get("t1", "penfro", 3) is None
    cache.forget("t3")
    assert cache.get("t3", "penfro", 1) is None and cache.get("t2", "penfro", 1) is not None
