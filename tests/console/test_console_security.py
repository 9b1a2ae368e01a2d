"""The console's security: the route × role matrix over every route, CSRF, session
fixation, lockout, another tenant's ids, and the audit log's redaction."""
from __future__ import annotations

import re
import uuid

from services.notify.console import console_routes
from services.notify.console.access import PUBLIC, allowed, permission_of
from services.notify.console.auth import LOCK_AFTER
from services.notify.console.models import ROLES
from tests.console.support import PASSWORD, csrf_token

PARAM = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")


def concrete(rule: str) -> str:
    """A route with every parameter an id nobody has (a refusal must come before a 404)."""
    return PARAM.sub(lambda m: "en" if m.group(1) == "code" else str(uuid.uuid4()), rule)


def test_every_console_route_declares_a_permission(console):
    routes = console_routes(console.app)
    assert len(routes) >= 6
    for rule, endpoint, _ in routes:
        assert permission_of(console.app.view_functions[endpoint]) is not None, rule


def test_route_role_matrix(console):
    """Every console route × every role (and signed out), from the app's url_map: a role
    without the route's permission gets 403 for every method, one with it never does."""
    council = console.council("penfro")
    checked = 0
    for role in (*ROLES, None):
        client = console.signed_in(council, role) if role else console.client()
        token = csrf_token(client.get("/console/" if role else "/console/sign-in").text)
        for rule, endpoint, methods in sorted(console_routes(console.app)):
            perm = permission_of(console.app.view_functions[endpoint])
            url = concrete(rule)
            for method in sorted(methods):
                if method == "GET":
                    r = client.get(url)
                else:
                    r = client.open(url, method=method, data={"csrf_token": token})
                where = f"{method} {rule} as {role or 'signed out'} ({perm})"
                assert r.status_code < 500, where
                if perm == PUBLIC:
                    assert r.status_code != 403, where
                elif role is None:
                    assert r.status_code == 303 and "/console/sign-in" in r.headers["Location"], where
                elif allowed(role, perm):
                    assert r.status_code != 403, where
                else:
                    assert r.status_code == 403, where
                    assert "You cannot do that" in r.text, where
                checked += 1
                if role and method != "GET" and client.get("/console/").status_code != 200:
                    client = console.signed_in(council, role)      # it signed itself out
                    token = csrf_token(client.get("/console/").text)
    assert checked >= len(console_routes(console.app)) * 5


def test_a_form_without_its_csrf_token_is_refused(console):
    council = console.council("penfro", roles=("admin",))
    client = console.client()
    r = client.post("/console/sign-in", data={"email": council.staff["admin"]["email"],
                                              "password": PASSWORD})
    assert r.status_code == 400 and "The form had expired" in r.text
    signed = console.signed_in(council, "admin")
    r = signed.post("/console/sign-out", data={})
    assert r.status_code == 400
    r = signed.post("/console/sign-out", data={"csrf_token": "forged"})
    assert r.status_code == 400
    assert signed.get("/console/").status_code == 200      # still signed in: nothing happened


def test_signing_in_issues_a_new_session_and_the_old_one_is_worthless(console):
    council = console.council("penfro", roles=("editor",))
    client = console.client()
    client.get("/console/sign-in")
    before = client.get_cookie("hysbys_console", path="/console").value
    r = console.sign_in(client, council.staff["editor"]["email"])
    assert r.status_code == 303
    after = client.get_cookie("hysbys_console", path="/console").value
    assert after != before
    # the cookie from before sign-in (as an attacker who planted it holds it) is not signed in
    attacker = console.client()
    attacker.set_cookie("hysbys_console", before, path="/console")
    assert attacker.get("/console/").status_code == 303
    # the new one is; after signing out it is not, even replayed
    thief = console.client()
    thief.set_cookie("hysbys_console", after, path="/console")
    assert thief.get("/console/").status_code == 200
    console.post(client, "/console/sign-out")
    assert thief.get("/console/").status_code == 303


def test_repeated_wrong_passwords_lock_the_account_until_the_lock_ends(console, clock):
    council = console.council("penfro", roles=("viewer",))
    email = council.staff["viewer"]["email"]
    client = console.client()
    for _ in range(LOCK_AFTER - 1):
        r = console.sign_in(client, email, "not the password")
        assert r.status_code == 401 and "The email address or password is wrong" in r.text
    r = console.sign_in(client, email, "not the password")
    assert r.status_code == 429 and "locked" in r.text
    r = console.sign_in(client, email)                    # the right password, but locked
    assert r.status_code == 429
    clock.advance(minutes=16)
    r = console.sign_in(client, email)
    assert r.status_code == 303


def test_an_unknown_address_gets_the_same_answer_as_a_wrong_password(console):
    console.council("penfro", roles=())
    r = console.sign_in(console.client(), "nobody@penfro.example", "whatever it is")
    assert r.status_code == 401 and "The email address or password is wrong" in r.text


def test_next_never_leaves_the_console(console):
    council = console.council("penfro", roles=("viewer",))
    client = console.client()
    page = client.get("/console/sign-in")
    r = client.post("/console/sign-in?next=//evil.example/", data={
        "email": council.staff["viewer"]["email"], "password": PASSWORD,
        "csrf_token": csrf_token(page.text)})
    assert r.status_code == 303 and r.headers["Location"] == "/console/"


def test_pages_carry_a_strict_content_security_policy(console):
    r = console.client().get("/console/sign-in")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["Cache-Control"] == "no-store"
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<script nonce="{nonce}">' in r.text


def test_the_console_is_in_welsh_when_chosen(console):
    client = console.client()
    r = client.get("/console/language/cy?next=/console/sign-in")
    assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in"
    page = client.get("/console/sign-in")
    assert '<html lang="cy"' in page.text
    assert "Mewngofnodi" in page.text and "Sign in to your council" not in page.text
    assert 'lang="en" hreflang="en"' in page.text and ">English<" in page.text
    english = console.client().get("/console/sign-in",
                                   headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert '<html lang="en-GB"' in english.text and ">Cymraeg<" in english.text


def test_docs_show_the_route_role_matrix_as_the_code_has_it(console):
    from pathlib import Path

    from services.notify.console.matrix import markdown

    docs = (Path(__file__).resolve().parents[2] / "docs" / "console.md").read_text()
    assert markdown(console.app) in docs, (
        "docs/console.md's matrix is out of date: python -m services.notify.console.matrix")
