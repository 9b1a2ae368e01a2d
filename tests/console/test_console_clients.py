"""How the console reaches the scheduler: a tenant JWT signed with the tenant's console
secret (derived from the platform key), through the real scheduler app."""
from __future__ import annotations

import time
import uuid

import jwt
import pytest
import requests

from services.notify.console.clients import (
    HttpScheduler,
    ServiceError,
    Unavailable,
    _Http,
)
from services.scheduler.wiring import build as build_scheduler
from shared import events
from shared.events import Event
from shared.tenancy import console_purpose, console_token
from tests.console.areas_support import session_into

BASE = "http://scheduler.test"


@pytest.fixture
def scheduler(embedded_settings):
    svc = build_scheduler(embedded_settings)
    svc.runtime.migrate()
    yield svc
    svc.runtime.db.dispose()


def seed(scheduler, slug: str, *, active: bool = True, keys: bool = True) -> str:
    tenant_id = str(uuid.uuid4())
    handle = scheduler.queue_handlers()["scheduler.events"]
    api_keys = [{"id": str(uuid.uuid4()), "name": "live", "key_type": "live",
                 "secret_encrypted": scheduler.runtime.box.encrypt(str(uuid.uuid4())),
                 "scopes": []}] if keys else []
    handle(Event.from_json(events.make(
        "tenant.changed", tenant_id, slug=slug, name=slug.title(), revision=1,
        default_language="cy", config={"quiet_hours": None}, active=active,
        api_keys=api_keys).to_json()))
    return tenant_id


def api(scheduler, tenant_id: str, staff: str | None = "staff-1") -> HttpScheduler:
    app = scheduler.create_app()
    return HttpScheduler(_Http("scheduler", BASE,
                               lambda: console_token(scheduler.runtime.box, tenant_id, staff),
                               session_into(BASE, app)))


def test_the_console_token_is_the_tenants_live_caller_and_names_the_staff_member(scheduler):
    tenant = seed(scheduler, "penfro", keys=False)     # works before the tenant has any key
    app = scheduler.create_app()
    seen = {}

    @app.get("/_whoami")
    def whoami():
        from shared.http import authenticated
        caller = authenticated(scheduler.runtime)
        seen.update(key=caller.key_id, type=caller.key_type, staff=caller.staff_id)
        return {}

    token = console_token(scheduler.runtime.box, tenant, "staff-42")
    r = app.test_client().get("/_whoami", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert seen == {"key": "console", "type": "live", "staff": "staff-42"}


def test_a_console_token_for_one_tenant_cannot_be_used_as_another(scheduler):
    penfro, powys = seed(scheduler, "penfro"), seed(scheduler, "powys")
    box = scheduler.runtime.box
    forged = jwt.encode({"iss": powys, "iat": int(time.time())},
                        box.derived(console_purpose(penfro))[0], algorithm="HS256")
    client = scheduler.create_app().test_client()
    r = client.get("/api/rounds", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 403


def test_a_console_token_signed_with_another_platform_key_is_refused(scheduler):
    from cryptography.fernet import Fernet

    from shared.crypto import SecretBox

    tenant = seed(scheduler, "penfro")
    other = SecretBox(Fernet.generate_key().decode())
    r = scheduler.create_app().test_client().get(
        "/api/rounds", headers={"Authorization": f"Bearer {console_token(other, tenant)}"})
    assert r.status_code == 403


def test_an_archived_tenants_console_token_is_refused(scheduler):
    tenant = seed(scheduler, "penfro", active=False)
    with pytest.raises(ServiceError) as refused:
        api(scheduler, tenant).rounds()
    assert refused.value.status == 403


def test_the_client_sets_up_a_round_and_reads_every_date_until_a_day(scheduler):
    tenant = seed(scheduler, "penfro")
    client = api(scheduler, tenant)
    client.put_round({"code": "A", "rrule": "FREQ=WEEKLY;BYDAY=TU", "start": "2026-01-06"})
    six = client.round("A")["upcoming"]
    assert len(six) == 6
    import datetime as dt
    first = dt.date.fromisoformat(six[0]["date"])
    until = first + dt.timedelta(weeks=9)
    listed = client.rounds(until=until.isoformat())["rounds"][0]["upcoming"]
    assert len(listed) == 10 and listed[-1]["date"] == until.isoformat()


def test_the_client_uploads_a_csv_and_gets_the_bad_row_by_line_with_the_good_rows_kept(scheduler):
    tenant = seed(scheduler, "penfro")
    client = api(scheduler, tenant)
    outcome = client.upload_subscribers(
        b"phone,language,round\n07700900001,cy,A\nnot a number,en,A\n07700900002,en,B\n")
    assert outcome["created"] == 2 and outcome["errors"][0]["row"] == 3
    assert len(client.subscribers()["subscribers"]) == 2


def test_another_tenants_subscriber_is_a_not_found_like_an_unknown_one(scheduler):
    penfro, powys = seed(scheduler, "penfro"), seed(scheduler, "powys")
    theirs = api(scheduler, powys)
    theirs.upsert_subscriber({"phone": "07700900001"})
    sid = theirs.subscribers()["subscribers"][0]["id"]
    for ident in (sid, str(uuid.uuid4())):
        with pytest.raises(ServiceError) as missing:
            api(scheduler, penfro).erase_subscriber(ident)
        assert missing.value.not_found


def test_a_service_that_does_not_answer_is_unavailable_not_an_error_page(scheduler):
    import socket

    with socket.socket() as s:          # a port nobody listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = _Http("scheduler", f"http://127.0.0.1:{port}", lambda: "t",
                 requests.Session(), timeout=2)
    with pytest.raises(Unavailable) as down:
        HttpScheduler(dead).rounds()
    assert down.value.status == 503 and "scheduler" in str(down.value)


def test_a_console_token_made_before_a_key_rotation_still_verifies_after_it():
    from cryptography.fernet import Fernet

    from shared.crypto import SecretBox

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = SecretBox(old)
    after = SecretBox(f"{new},{old}")            # the new key first: it signs from now on
    tenant = str(uuid.uuid4())
    token = console_token(before, tenant)
    secrets = after.derived(console_purpose(tenant))
    assert secrets[1] == before.derived(console_purpose(tenant))[0]
    assert jwt.decode(token, secrets[1], algorithms=["HS256"])["iss"] == tenant
    assert secrets[0] != secrets[1]
