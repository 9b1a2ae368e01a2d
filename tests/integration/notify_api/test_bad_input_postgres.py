"""What SQLite stores but PostgreSQL refuses (NUL, over-long values) is a 400, never a 500."""
from __future__ import annotations

import pytest
from notifications_python_client.authentication import create_jwt_token

from services.notify import tenants
from services.notify.wiring import build
from tests.conftest import _base_settings

NUL = "a\u0000b"


@pytest.fixture
def pg_app(tmp_path, pg_url):
    svc = build(_base_settings(tmp_path, database_url=pg_url))
    svc.runtime.migrate()
    with svc.runtime.db.transaction() as session:
        t = tenants.create_tenant(session, svc.runtime.box, name="Penfro", slug="penfro")
        tenants.update_tenant(session, svc.runtime.box, t.id, {"quiet_hours": None})
    key = t.api_key
    headers = {"Authorization": "Bearer " + create_jwt_token(key[-36:], key[-73:-37])}
    yield svc, svc.create_app().test_client(), headers, t.id
    svc.runtime.db.dispose()


@pytest.mark.integration
def test_nul_characters_and_overlong_values_are_refused_before_the_database(pg_app):
    svc, client, headers, tenant_id = pg_app
    admin = {"Authorization": f"Bearer {svc.runtime.settings.admin_token}"}
    r = client.post("/api/templates", headers=headers, json={
        "name": "t", "type": "email", "body": {"cy": "((a))", "en": "((a))"},
        "subject": {"cy": "s", "en": "s"}})
    tid = r.get_json()["id"]
    cases = [
        ("/api/templates", headers, {"name": NUL, "type": "sms", "body": {"cy": "a", "en": "b"}}),
        ("/api/templates", headers, {"name": "n", "type": "sms", "body": {"cy": NUL, "en": "b"}}),
        ("/v2/notifications/email", headers, {"email_address": "a\u0000@b.cymru",
                                              "template_id": tid, "personalisation": {"a": 1}}),
        ("/v2/notifications/email", headers, {"email_address": "a@b.cymru", "template_id": tid,
                                              "personalisation": {"a": NUL}}),
        ("/v2/notifications/email", headers, {"email_address": "a@b.cymru", "template_id": tid,
                                              "personalisation": {"a": 1}, "reference": NUL}),
        ("/v2/notifications/email", headers, {"email_address": "a" * 400 + "@b.cymru",
                                              "template_id": tid, "personalisation": {"a": 1}}),
        ("/api/suppressions", headers, {"recipient": "a\u0000@b.cymru", "channel": "email"}),
        ("/admin/tenants", admin, {"name": NUL, "slug": "nul"}),
        (f"/admin/tenants/{tenant_id}/keys", admin, {"name": NUL}),
    ]
    for path, auth, body in cases:
        r = client.post(path, headers=auth, json=body)
        assert r.status_code == 400, (path, body, r.get_data(as_text=True))
    csv = "email_address,a\na\u0000@b.cymru,1\nok@b.cymru,x\u0000y\ngood@b.cymru,1\n"
    r = client.post(f"/api/bulk?template_id={tid}", headers=headers, data=csv.encode(),
                    content_type="text/csv")
    assert r.status_code == 201, r.get_data(as_text=True)
    assert (r.get_json()["accepted"], r.get_json()["rejected"]) == (1, 2)
