"""The console's tables on both stores (migration 0010 on SQLite and PostgreSQL):
sign-in with lockout, an invitation accepted, a template edited with its versions,
the audit log by API, and another tenant's ids."""
from __future__ import annotations

import re

import sqlalchemy as sa

from services.notify.console.auth import LOCK_AFTER
from services.notify.console.models import AuditEntry, StaffInvite
from services.notify.models import Notification
from tests.console.support import bearer, csrf_token


def post(client, path, data, page=None):
    return client.post(path, data={**data, "csrf_token": csrf_token(client.get(page or path).text)})


def test_the_console_on_each_store(any_console, clock):
    console = any_console
    council = console.council("penfro", roles=("admin", "viewer"))
    other = console.council("ceredigion", roles=("admin",))
    # lockout, then the lock ends
    for _ in range(LOCK_AFTER):
        console.sign_in(console.client(), council.staff["viewer"]["email"], "wrong password")
    assert console.sign_in(console.client(), council.staff["viewer"]["email"]).status_code == 429
    clock.advance(minutes=16)
    assert console.sign_in(console.client(), council.staff["viewer"]["email"]).status_code == 303
    # an invitation, accepted
    admin = console.signed_in(council, "admin")
    assert post(admin, "/console/users/invite", {"email": "golygydd@penfro.example",
                                                 "role": "editor"}).status_code == 303
    with console.db.read() as s:
        body = s.get(Notification, s.scalars(sa.select(StaffInvite)).one().notification_id).body
    link = re.search(r"/console/invitation/(\S+)", body).group(0)
    editor = console.client()
    assert post(editor, link, {"name": "Golygydd", "password": "pedwar gair hir iawn"}
                ).status_code == 303
    # a template, edited: two versions, both by the editor
    r = post(editor, "/console/templates/new", {"name": "Biniau", "type": "sms",
                                                "body_cy": "Biniau yfory", "body_en": "Bins tomorrow",
                                                "submit": "y"})
    tid = r.headers["Location"].rsplit("/", 1)[1]
    assert post(editor, f"/console/templates/{tid}/edit", {
        "name": "Biniau", "body_cy": "Biniau heno", "body_en": "Bins tonight",
        "submit": "y"}).status_code == 303
    assert editor.get(f"/console/templates/{tid}/versions").text.count(
        "golygydd@penfro.example") == 2
    # the audit log, by API, newest first
    entries = console.client().get("/api/audit", headers=bearer(council.api_key)).json["entries"]
    assert [e["action"] for e in entries[:3]] == ["template.updated", "template.created",
                                                 "staff.joined"]
    with console.db.read() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.tenant_id == other.id)) == 0
    # another tenant's template is a 404 for them
    theirs = console.signed_in(other, "admin")
    assert theirs.get(f"/console/templates/{tid}").status_code == 404
