"""Helpers for the notify API tests: a tenant, its keys as Notify-style bearer tokens."""
from __future__ import annotations

from dataclasses import dataclass

from notifications_python_client.authentication import create_jwt_token

from services.notify import tenants

SMS_TEMPLATE = {"name": "Bin day", "type": "sms",
                "body": {"cy": "Helo ((name)), biniau ((bin type)) yfory.",
                         "en": "Hello ((name)), ((bin type)) bins tomorrow."}}
EMAIL_TEMPLATE = {"name": "Clinic", "type": "email",
                  "body": {"cy": "Annwyl ((name))", "en": "Dear ((name))"},
                  "subject": {"cy": "Eich apwyntiad", "en": "Your appointment"}}


def bearer(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


@dataclass
class TenantKeys:
    id: str
    api_key: str
    test_api_key: str

    @property
    def live(self) -> dict:
        return bearer(self.api_key)

    @property
    def test(self) -> dict:
        return bearer(self.test_api_key)


def new_tenant(notify, slug: str = "penfro", **config) -> TenantKeys:
    """A tenant with no quiet hours unless ``config`` says otherwise (tests run at any hour)."""
    with notify.runtime.db.transaction() as session:
        created = tenants.create_tenant(session, notify.runtime.box, name=slug.title(), slug=slug)
        tenants.update_tenant(session, notify.runtime.box, created.id,
                              {"quiet_hours": None, **config})
    return TenantKeys(created.id, created.api_key, created.test_api_key)


def errors(resp) -> tuple[int, str, str]:
    """(status, error type, message) from a Notify-style error body; checks the shape."""
    body = resp.get_json()
    assert body is not None, f"not JSON: {resp.status_code} {resp.data[:200]!r}"
    assert set(body) == {"status_code", "errors"}, body
    assert body["status_code"] == resp.status_code
    first = body["errors"][0]
    return resp.status_code, first["error"], first["message"]
