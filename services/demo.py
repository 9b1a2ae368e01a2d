"""The demo tenant that ``make run`` creates: a council with a bilingual bin reminder.

Set up through the public HTTP APIs, the way a council's service team would,
so the demo exercises the same paths as real use.  Run again, it finds the
tenant it made before and prints its keys (decrypted from the notify database).
"""
from __future__ import annotations

import datetime as dt
import time

import requests
import sqlalchemy as sa
from notifications_python_client.authentication import create_jwt_token

from services.embedded import Platform
from shared.tenancy import ApiKey, Tenant, key_string

SLUG = "pembrokeshire-demo"
NAME = "Cyngor Sir Penfro / Pembrokeshire County Council (demo)"
# made up: the demo tenant's sends only ever reach the simulator
DEMO_TWILIO_TOKEN = "demo-auth-token"  # nosec B105
TEMPLATE = {
    "name": "Bin day reminder / Nodyn atgoffa diwrnod biniau",
    "type": "sms",
    "body": {
        "cy": "Helo ((name)). Casgliad biniau yfory: rhowch eich bagiau du a'ch ailgylchu "
              "allan erbyn 7yb. Atebwch STOP i beidio â chael y negeseuon hyn.",
        "en": "Hello ((name)). Bin collection tomorrow: please put your black bags and "
              "recycling out by 7am. Reply STOP to stop these messages.",
    },
}
SUBSCRIBERS = [
    {"phone": "07700 900000", "language": "cy", "attributes": {"name": "Siân", "round": "A"}},
    {"phone": "07700 900111", "language": "en", "attributes": {"name": "Dave", "round": "A"}},
    {"phone": "07700 900222", "attributes": {"name": "Eleri", "round": "A"}},
]


def _find(platform: Platform) -> dict | None:
    box = platform.notify.runtime.box
    with platform.notify.runtime.db.read() as session:
        tenant = session.scalars(sa.select(Tenant).where(Tenant.slug == SLUG)).first()
        if tenant is None:
            return None
        keys = {k.key_type: k for k in session.scalars(sa.select(ApiKey).where(
            ApiKey.tenant_id == tenant.id, ApiKey.revoked_at.is_(None)))}
    out = {"id": tenant.id, "slug": tenant.slug, "name": tenant.name}
    for key_type, field in (("live", "api_key"), ("test", "test_api_key")):
        k = keys[key_type]
        out[field] = key_string(k.name, tenant.id, box.decrypt(k.secret_encrypted))
    return out


def _auth(api_key: str) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


def ensure_demo(platform: Platform, *, send_in: dt.timedelta = dt.timedelta(seconds=60)) -> dict:
    urls = platform.urls()
    admin = {"Authorization": f"Bearer {platform.settings.admin_token}"}
    demo = _find(platform)
    if demo is None:
        r = requests.post(f"{urls['notify']}/admin/tenants", headers=admin, timeout=10,
                          json={"name": NAME, "slug": SLUG, "default_language": "cy"})
        r.raise_for_status()
        demo = {**r.json(), "name": NAME}
        requests.patch(f"{urls['notify']}/admin/tenants/{demo['id']}", headers=admin, timeout=10,
                       json={"inbound_numbers": ["+447700900999"], "quiet_hours": None,
                             "provider_credentials": {"twilio": {
                                 "account_sid": "ACdemo", "auth_token": DEMO_TWILIO_TOKEN,
                                 "from_number": "+447700900999"}}}).raise_for_status()
    key = demo["api_key"]
    r = requests.post(f"{urls['notify']}/api/templates", json=TEMPLATE, headers=_auth(key),
                      timeout=10)
    r.raise_for_status()
    template_id = r.json()["id"]
    _wait_for_replica(urls["scheduler"], key)
    r = requests.post(f"{urls['scheduler']}/api/subscribers", json=SUBSCRIBERS,
                      headers=_auth(key), timeout=10)
    r.raise_for_status()
    send_at = (dt.datetime.now(dt.UTC) + send_in).replace(microsecond=0)
    r = requests.post(f"{urls['scheduler']}/api/campaigns", headers=_auth(key), timeout=10, json={
        "name": "Demo: bins tomorrow", "kind": "broadcast", "template_id": template_id,
        "channel": "sms", "send_at": send_at.isoformat(), "audience": {"round": "A"},
        "urgent": False})
    r.raise_for_status()
    console = ensure_console_user(platform, demo["id"])
    return {**demo, "console": console, "template_id": template_id, "campaign_id": r.json()["id"],
            "subscribers": len(SUBSCRIBERS), "send_at": send_at.isoformat()}


DEMO_STAFF_EMAIL = "demo-admin@pembrokeshire-demo.example"


def ensure_console_user(platform: Platform, tenant_id: str) -> dict:
    """The demo council's console admin: made once, its password kept in var/ (generated,
    so no two installs share one); printed by ``make run`` with the console's address."""
    import secrets

    from services.notify.console import auth
    from services.notify.console.models import StaffUser
    from shared.db import utcnow

    path = platform.settings.var_dir / "console-demo.password"
    with platform.notify.runtime.db.transaction() as s:
        user = s.scalars(sa.select(StaffUser).where(StaffUser.email == DEMO_STAFF_EMAIL)).first()
        if user is None or not path.exists():
            password = secrets.token_urlsafe(12)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(password)
            path.chmod(0o600)
            if user is None:
                auth.create_user(s, tenant_id=tenant_id, email=DEMO_STAFF_EMAIL,
                                 name="Demo Admin", role="admin", password=password,
                                 now=utcnow())
            else:
                user.password_hash = auth.hash_password(password)
    return {"url": platform.urls()["notify"] + "/console/", "email": DEMO_STAFF_EMAIL,
            "password": path.read_text().strip()}


def _wait_for_replica(scheduler_url: str, key: str, timeout: float = 15.0) -> None:
    """The scheduler learns of a new tenant from a tenant.changed event: wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if requests.get(f"{scheduler_url}/api/campaigns", headers=_auth(key),
                        timeout=5).status_code == 200:
            return
        time.sleep(0.1)
    raise RuntimeError("the scheduler did not receive the demo tenant in time")
