"""The three services' Flask apps in-process, with a tenant replicated into each, for fuzzing.

Nothing runs in the background: the apps are called through WSGI, the tenant is
written into notify and its snapshot applied to the inbound and scheduler replicas
directly, so hypothesis can call thousands of times in seconds.
"""
from __future__ import annotations

import pytest

from services.embedded import Platform
from services.notify import tenants
from shared.tenancy import ApiKey, Tenant, apply_tenant_changed, snapshot_event
from tests.conftest import _base_settings


@pytest.fixture(scope="module")
def fuzz_platform(tmp_path_factory):
    """(platform, created tenant) with its API keys; module-scoped (it is only read)."""
    settings = _base_settings(tmp_path_factory.mktemp("fuzz"))
    platform = Platform(settings)
    platform.migrate()
    notify = platform.notify.runtime
    with notify.db.transaction() as session:
        created = tenants.create_tenant(session, notify.box, name="Fuzz", slug="fuzz")
    with notify.db.read() as session:
        tenant = session.get(Tenant, created.id)
        keys = list(session.query(ApiKey).filter(ApiKey.tenant_id == created.id))
        event = snapshot_event(tenant, keys)
    for svc in (platform.inbound, platform.scheduler):
        with svc.runtime.db.transaction() as session:
            apply_tenant_changed(event, session)
    yield platform, created
    for svc in platform.services:
        svc.runtime.db.dispose()
