"""``make run``'s demo council gets a console admin whose printed password signs in."""
from __future__ import annotations

from services.demo import DEMO_STAFF_EMAIL, ensure_console_user
from services.embedded import Platform
from services.notify import tenants
from tests.console.support import csrf_token


def test_the_demo_console_user_signs_in_with_the_printed_password(embedded_settings):
    platform = Platform(embedded_settings)
    platform.migrate()
    with platform.notify.runtime.db.transaction() as s:
        created = tenants.create_tenant(s, platform.notify.runtime.box, name="Demo", slug="demo")
    first = ensure_console_user(platform, created.id)
    again = ensure_console_user(platform, created.id)          # a second `make run`
    assert first == again and first["email"] == DEMO_STAFF_EMAIL
    assert first["url"].endswith("/console/") and len(first["password"]) >= 12
    client = platform.notify.create_app().test_client()
    page = client.get("/console/sign-in")
    r = client.post("/console/sign-in", data={"email": first["email"], "password": first["password"],
                                              "csrf_token": csrf_token(page.text)})
    assert r.status_code == 303 and r.headers["Location"] == "/console/"
    assert "Demo Admin" in client.get("/console/").text
    platform.bus.close()
    for svc in platform.services:
        svc.runtime.db.dispose()
