"""A tenant created through POST /admin/tenants can call the scheduler and inbound at
once: a service whose replica has not heard of the tenant (or key) yet fetches it from
notify instead of answering 403 "service not found".  The replicas' consumers are
stopped before the tenant is made, so its ``tenant.changed`` event cannot arrive first
and the test is not a race.  A key that is really unknown, or revoked, is still refused.

Runs embedded (memory broker + SQLite) and on RabbitMQ + PostgreSQL.
"""
from __future__ import annotations

import uuid

import pytest
import requests
from notifications_python_client.authentication import create_jwt_token

from services.embedded import Platform


def bearer(api_key: str, secret: str | None = None) -> dict:
    token = create_jwt_token(secret or api_key[-36:], api_key[-73:-37])
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def platform_without_replication(stack_settings):
    """The platform with inbound's and the scheduler's consumers stopped: no event reaches
    their replicas from now on."""
    p = Platform(stack_settings)
    p.migrate()
    p.start()
    for background in p.backgrounds[1:]:
        background.stop()
    yield p
    p.stop()


def create(platform: Platform, slug: str) -> dict:
    admin = {"Authorization": f"Bearer {platform.settings.admin_token}"}
    r = requests.post(platform.urls()["notify"] + "/admin/tenants", headers=admin, timeout=5,
                      json={"name": slug.title(), "slug": slug})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_tenant_made_a_moment_ago_can_call_the_scheduler_and_inbound_at_once(
        platform_without_replication):
    p = platform_without_replication
    tenant = create(p, "newydd")
    urls = p.urls()

    campaigns = requests.get(urls["scheduler"] + "/api/campaigns",
                             headers=bearer(tenant["api_key"]), timeout=5)
    keywords = requests.get(urls["inbound"] + "/api/keywords",
                            headers=bearer(tenant["test_api_key"]), timeout=5)

    assert campaigns.status_code == 200, campaigns.text
    assert keywords.status_code == 200, keywords.text
    with p.scheduler.runtime.db.read() as session:
        from shared.tenancy import Tenant

        assert session.get(Tenant, tenant["id"]).slug == "newydd", "kept in the replica"


def test_a_key_that_is_really_unknown_or_revoked_is_still_refused(platform_without_replication):
    p = platform_without_replication
    tenant = create(p, "gwrthod")
    admin = {"Authorization": f"Bearer {p.settings.admin_token}"}
    key = requests.post(f"{p.urls()['notify']}/admin/tenants/{tenant['id']}/keys", headers=admin,
                        timeout=5, json={"name": "cyn bo hir", "key_type": "live"}).json()
    gone = requests.delete(f"{p.urls()['notify']}/admin/tenants/{tenant['id']}/keys/{key['id']}",
                           headers=admin, timeout=5)
    assert gone.status_code == 204
    scheduler = p.urls()["scheduler"] + "/api/campaigns"

    revoked = requests.get(scheduler, headers=bearer(key["api_key"]), timeout=5)
    forged = requests.get(scheduler, headers=bearer(tenant["api_key"], str(uuid.uuid4())),
                          timeout=5)
    stranger = requests.get(scheduler, timeout=5, headers=bearer(
        f"x-{uuid.uuid4()}-{uuid.uuid4()}"))

    assert (revoked.status_code, revoked.json()["errors"][0]["message"]) == \
        (403, "Invalid token: API key revoked")
    assert (forged.status_code, forged.json()["errors"][0]["message"]) == \
        (403, "Invalid token: API key not found")
    assert (stranger.status_code, stranger.json()["errors"][0]["message"]) == \
        (403, "Invalid token: service not found")
    ok = requests.get(scheduler, headers=bearer(tenant["api_key"]), timeout=5)
    assert ok.status_code == 200, "the tenant's own live key works beside them"


def test_the_snapshot_is_notify_s_internal_answer_and_needs_the_admin_token(
        platform_without_replication):
    p = platform_without_replication
    tenant = create(p, "ciplun")
    url = f"{p.urls()['notify']}/internal/tenants/{tenant['id']}"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers=bearer(tenant["api_key"]), timeout=5).status_code == 403
    admin = {"Authorization": f"Bearer {p.settings.admin_token}"}
    body = requests.get(url, headers=admin, timeout=5).json()
    assert (body["type"], body["tenant_id"], body["data"]["slug"]) == \
        ("tenant.changed", tenant["id"], "ciplun")
    unknown = requests.get(f"{p.urls()['notify']}/internal/tenants/{uuid.uuid4()}",
                           headers=admin, timeout=5)
    assert unknown.status_code == 404
