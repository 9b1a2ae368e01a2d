"""A replica's fetch of a tenant it does not know from the owner (shared.tenancy.OwnerTenants),
against notify's real internal endpoint through a hand-written HTTP session (the Flask test
client behind requests' interface)."""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest

from services.notify import tenants
from services.notify.wiring import build
from services.scheduler import wiring as scheduler_wiring
from shared.tenancy import OwnerTenants, Tenant


class ClientSession:
    """requests.Session's ``get`` over a Flask test client, counting the calls."""

    def __init__(self, client):
        self.client = client
        self.calls = 0

    def get(self, url, timeout, headers):
        self.calls += 1
        resp = self.client.get(urlsplit(url).path, headers=headers)
        return _Answer(resp.status_code, resp.data)


class _Answer:
    def __init__(self, status_code, content):
        self.status_code, self.content = status_code, content


@pytest.fixture
def notify(embedded_settings):
    svc = build(embedded_settings)
    svc.runtime.migrate()
    yield svc
    svc.runtime.db.dispose()


@pytest.fixture
def replica(embedded_settings, tmp_path):
    """The scheduler's database (a replica of tenants), on its own SQLite file."""
    svc = scheduler_wiring.build(embedded_settings.with_(
        database_url=f"sqlite:///{tmp_path}/replica.db"))
    svc.runtime.migrate()
    yield svc.runtime.db
    svc.runtime.db.dispose()


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_miss_brings_the_tenant_in_and_a_fruitless_one_is_not_asked_again_at_once(
        notify, replica):
    http = ClientSession(notify.create_app().test_client())
    clock = Clock()
    source = OwnerTenants("http://127.0.0.1:8001", notify.runtime.settings.admin_token, http,
                          quiet_seconds=2.0, clock=clock)
    with notify.runtime.db.transaction() as session:
        created = tenants.create_tenant(session, notify.runtime.box, name="Ceredigion",
                                        slug="ceredigion")

    assert source.refresh(replica, created.id) is True
    with replica.read() as session:
        assert session.get(Tenant, created.id).slug == "ceredigion"
    assert source.refresh(replica, created.id) is True, "asked: the replica is current"
    assert source.refresh(replica, created.id) is False
    assert http.calls == 2, "a fetch that brought nothing new is not repeated inside quiet_seconds"
    clock.now += 2.5
    stranger = str(uuid.uuid4())
    assert source.refresh(replica, stranger) is False
    assert http.calls == 3


def test_a_wrong_admin_token_or_a_silent_notify_refuses_as_before(notify, replica):
    http = ClientSession(notify.create_app().test_client())
    with notify.runtime.db.transaction() as session:
        created = tenants.create_tenant(session, notify.runtime.box, name="Powys", slug="powys")
    assert OwnerTenants("http://127.0.0.1:8001", "not-the-token", http).refresh(
        replica, created.id) is False
    silent = OwnerTenants("http://127.0.0.1:9", "x", timeout=0.2)     # nothing listens on :9
    assert silent.refresh(replica, created.id) is False
    with replica.read() as session:
        assert session.get(Tenant, created.id) is None
