"""Team, API keys and Templates through the test client: what each page does, that
another tenant's ids are a 404 byte-identical to an unknown id, and Welsh formatting."""
from __future__ import annotations

import re
import uuid

import sqlalchemy as sa

from services.notify.console.models import StaffInvite, StaffUser
from services.notify.models import Notification, Template
from shared.tenancy import ApiKey
from tests.console.support import csrf_token


def form_post(console, client, path: str, data: dict, page: str | None = None):
    html = client.get(page or path).text
    return client.post(path, data={**data, "csrf_token": csrf_token(html)})


def test_an_invitation_is_an_email_notification_that_works_once(console, clock):
    council = console.council("penfro", roles=("admin",))
    admin = console.signed_in(council, "admin")
    r = form_post(console, admin, "/console/users/invite",
                  {"email": "Newydd@Penfro.Example", "role": "sender"})
    assert r.status_code == 303
    with console.db.read() as s:
        invite = s.scalars(sa.select(StaffInvite)).one()
        n = s.get(Notification, invite.notification_id)
        assert (n.channel, n.recipient, n.tenant_id) == ("email", "newydd@penfro.example", council.id)
        assert n.status == "created" and n.language == "cy+en"
        body = n.body
        assert len(invite.token_hash) == 64 and invite.token_hash not in body
    link = re.search(r"/console/invitation/(\S+)", body).group(0)
    newcomer = console.client()
    r = form_post(console, newcomer, link, {"name": "Siân Newydd", "password": "short"})
    assert r.status_code == 400 and "at least 12 characters" in r.text
    r = form_post(console, newcomer, link, {"name": "Siân Newydd",
                                            "password": "a long enough passphrase"})
    assert r.status_code == 303
    assert "Siân Newydd" in newcomer.get("/console/").text            # signed in as the sender
    assert newcomer.get("/console/users/").status_code == 403
    assert console.client().get(link).status_code == 404                # used: gone
    r = form_post(console, admin, "/console/users/invite",
                  {"email": "newydd@penfro.example", "role": "viewer"})
    assert r.status_code == 400 and "already has an account" in r.text


def test_an_invitation_expires(console, clock):
    council = console.council("penfro", roles=("admin",))
    admin = console.signed_in(council, "admin")
    form_post(console, admin, "/console/users/invite", {"email": "hwyr@penfro.example",
                                                         "role": "viewer"})
    with console.db.read() as s:
        body = s.get(Notification, s.scalars(sa.select(StaffInvite)).one().notification_id).body
    link = re.search(r"/console/invitation/(\S+)", body).group(0)
    clock.advance(days=3, seconds=1)
    assert console.client().get(link).status_code == 404


def test_a_role_change_applies_at_once_and_removal_signs_out(console):
    council = console.council("penfro", roles=("admin", "editor"))
    admin = console.signed_in(council, "admin")
    editor = console.signed_in(council, "editor")
    assert editor.get("/console/templates/new").status_code == 200
    uid = council.staff["editor"]["id"]
    r = form_post(console, admin, f"/console/users/{uid}", {"role": "viewer"})
    assert r.status_code == 303
    assert editor.get("/console/").status_code == 303                   # its session ended
    viewer = console.signed_in(council, "editor")                       # signs in again: viewer
    assert viewer.get("/console/templates/new").status_code == 403
    r = form_post(console, admin, f"/console/users/{uid}/remove", {}, page="/console/users/")
    assert r.status_code == 303
    assert viewer.get("/console/").status_code == 303
    with console.db.read() as s:
        assert s.get(StaffUser, uid) is None
    me = council.staff["admin"]["id"]
    r = form_post(console, admin, f"/console/users/{me}", {"role": "viewer"})
    assert r.status_code == 400 and "your own admin role" in r.text


def test_an_api_key_is_shown_once_listed_without_its_secret_and_revoked(console):
    council = console.council("penfro", roles=("admin",))
    admin = console.signed_in(council, "admin")
    r = form_post(console, admin, "/console/api-keys/new", {"name": "CRM", "key_type": "live"})
    assert r.status_code == 200
    key = re.search(r'id="api-key">([^<]+)<', r.text).group(1)
    assert key.startswith("crm-" + council.id)
    secret = key[-36:]
    listing = admin.get("/console/api-keys/")
    assert "CRM" in listing.text and secret not in listing.text and "Not used yet" in listing.text
    auth = {"Authorization": "Bearer " + __import__(
        "notifications_python_client.authentication", fromlist=["x"]).create_jwt_token(
        secret, council.id)}
    assert console.client().get("/api/templates", headers=auth).status_code == 200
    assert "Not used yet" not in admin.get("/console/api-keys/").text.split("CRM", 1)[1][:400]
    with console.db.read() as s:
        key_id = s.scalars(sa.select(ApiKey.id).where(ApiKey.name == "CRM")).one()
    r = form_post(console, admin, f"/console/api-keys/{key_id}/revoke", {},
                  page="/console/api-keys/")
    assert r.status_code == 303
    assert console.client().get("/api/templates", headers=auth).status_code == 403


def test_a_template_in_both_languages_with_versions(console):
    council = console.council("penfro", roles=("editor",))
    editor = console.signed_in(council, "editor")
    data = {"name": "Biniau", "type": "sms", "body_cy": "Rhowch y biniau allan, ((enw))",
            "body_en": "Put the bins out, ((name))"}
    r = form_post(console, editor, "/console/templates/new", {**data, "preview": "y"})
    assert r.status_code == 200 and 'data-testid="encoding-cy">GSM-7' in r.text
    with console.db.read() as s:
        assert s.scalars(sa.select(Template).where(Template.tenant_id == council.id,
                                                   Template.name == "Biniau")).first() is None
    r = form_post(console, editor, "/console/templates/new", {**data, "submit": "y"})
    assert r.status_code == 303
    tid = r.headers["Location"].rsplit("/", 1)[1]
    r = form_post(console, editor, f"/console/templates/{tid}/edit",
                  {**data, "body_cy": "Rhowch y biniau allan heno, ((enw)) – diolch ŵ",
                   "submit": "y"})
    assert r.status_code == 303
    page = editor.get(f"/console/templates/{tid}").text
    assert 'data-testid="encoding-cy">UCS-2' in page and 'data-testid="letters-cy">ŵ' in page
    versions = editor.get(f"/console/templates/{tid}/versions").text
    assert versions.count(council.staff["editor"]["email"]) == 2
    # the live preview's fragment, as console.js asks for it
    r = form_post(console, editor, "/console/templates/preview",
                  {"type": "sms", "body_cy": "â" * 71, "body_en": "a"},
                  page="/console/templates/new")
    assert r.status_code == 200 and 'data-testid="fragments-cy">2' in r.text
    assert "<html" not in r.text


def test_an_email_template_needs_both_subjects(console):
    council = console.council("penfro", roles=("editor",))
    editor = console.signed_in(council, "editor")
    r = form_post(console, editor, "/console/templates/new", {
        "name": "Croeso", "type": "email", "subject_cy": "", "subject_en": "Welcome",
        "body_cy": "Croeso", "body_en": "Welcome", "submit": "y"})
    assert r.status_code == 400 and "Enter the subject in Welsh" in r.text


def test_another_tenants_ids_are_a_404_identical_to_an_unknown_id(console):
    mine = console.council("penfro", roles=("admin",))
    theirs = console.council("ceredigion", roles=("admin",))
    admin = console.signed_in(mine, "admin")
    other = console.signed_in(theirs, "admin")
    tid = form_post(console, other, "/console/templates/new", {
        "name": "Eu templed", "type": "sms", "body_cy": "a", "body_en": "b",
        "submit": "y"}).headers["Location"].rsplit("/", 1)[1]
    with console.db.read() as s:
        their_key = s.scalars(sa.select(ApiKey.id).where(ApiKey.tenant_id == theirs.id)).first()
    their_user = theirs.staff["admin"]["id"]
    form_post(console, other, "/console/users/invite", {"email": "x@ceredigion.example",
                                                         "role": "viewer"})
    with console.db.read() as s:
        their_invite = s.scalars(sa.select(StaffInvite.id).where(
            StaffInvite.tenant_id == theirs.id)).one()
    unknown = str(uuid.uuid4())
    for path in ("/console/templates/{}", "/console/templates/{}/edit",
                 "/console/templates/{}/versions", "/console/users/{}"):
        target = their_user if "users" in path else tid
        theirs_r, unknown_r = admin.get(path.format(target)), admin.get(path.format(unknown))
        assert theirs_r.status_code == unknown_r.status_code == 404, path
        # the same page but for the id the request itself carried (in the language link)
        assert _without_nonce(theirs_r.text).replace(target, "ID") == \
            _without_nonce(unknown_r.text).replace(unknown, "ID"), path
    for path, target in (("/console/api-keys/{}/revoke", their_key),
                         ("/console/users/{}/remove", their_user),
                         ("/console/users/invitations/{}/cancel", their_invite)):
        r = form_post(console, admin, path.format(target), {}, page="/console/")
        assert r.status_code == 404, path
    assert other.get("/console/").status_code == 200          # their admin is still there
    with console.db.read() as s:
        assert s.get(ApiKey, their_key).revoked_at is None
        assert s.get(StaffInvite, their_invite).revoked_at is None


def _without_nonce(html: str) -> str:
    return re.sub(r'nonce="[^"]+"|value="[^"]+"', "", html)


def test_dates_and_numbers_follow_the_language(console):
    council = console.council("penfro", roles=("admin",))
    admin = console.signed_in(council, "admin")
    admin.get("/console/language/cy")
    listing = admin.get("/console/api-keys/").text
    assert "Rhag" in listing                               # December, in Welsh (Rhagfyr)
    admin.get("/console/language/en")
    assert "Dec" in admin.get("/console/api-keys/").text
