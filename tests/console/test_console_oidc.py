"""Signing in with the council's OpenID Connect provider (a fake one on 127.0.0.1):
only invited people, and only with a token the console can trust."""
from __future__ import annotations

import pytest
import requests

from services.notify.console.models import StaffUser
from tests.console.support import csrf_token
from tests.fakes.oidc_server import FakeOidcProvider


@pytest.fixture
def provider():
    with FakeOidcProvider() as p:
        yield p


def configure(console, council, provider):
    admin = console.signed_in(council, "admin")
    page = admin.get("/console/settings/")
    assert "/console/sign-in/penfro/oidc/callback" in page.text
    r = admin.post("/console/settings/", data={
        "issuer": provider.issuer, "client_id": provider.client_id,
        "client_secret": provider.client_secret, "csrf_token": csrf_token(page.text)})
    assert r.status_code == 303
    assert provider.client_secret not in admin.get("/console/settings/").text
    assert provider.client_secret not in admin.get("/console/audit").text


def round_trip(client):
    """The browser's part: to the provider, which approves at once, and back."""
    r = client.get("/console/sign-in/penfro/oidc")
    assert r.status_code == 303
    back = requests.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302
    return client.get(back.headers["Location"].replace("http://localhost", ""))


def test_an_invited_person_signs_in_with_the_councils_account(console, provider):
    council = console.council("penfro", roles=("admin", "editor"))
    configure(console, council, provider)
    provider.person = {"sub": "kc-42", "email": council.staff["editor"]["email"].upper(),
                       "email_verified": True}
    page = console.client().get("/console/sign-in?council=penfro")
    assert "/console/sign-in/penfro/oidc" in page.text
    client = console.client()
    r = round_trip(client)
    assert r.status_code == 303 and r.headers["Location"] == "/console/"
    assert "Editor" in client.get("/console/").text
    assert provider.problems == []
    with console.db.read() as s:
        assert s.get(StaffUser, council.staff["editor"]["id"]).oidc_subject == "kc-42"
    # next time the subject is enough, even if the provider's email changed
    provider.person = {"sub": "kc-42", "email": "renamed@example.gov.uk", "email_verified": True}
    assert round_trip(console.client()).status_code == 303


def test_someone_not_invited_is_refused(console, provider):
    council = console.council("penfro", roles=("admin",))
    configure(console, council, provider)
    provider.person = {"sub": "stranger", "email": "stranger@example.gov.uk",
                       "email_verified": True}
    r = round_trip(console.client())
    assert r.status_code == 403 and "nobody has invited it" in r.text


def test_an_unverified_email_is_not_enough(console, provider):
    council = console.council("penfro", roles=("admin", "viewer"))
    configure(console, council, provider)
    provider.person = {"sub": "kc-9", "email": council.staff["viewer"]["email"],
                       "email_verified": False}
    assert round_trip(console.client()).status_code == 403


@pytest.mark.parametrize("trouble", ["forge", "wrong_nonce", "expired"])
def test_an_untrustworthy_id_token_is_refused(console, provider, trouble):
    council = console.council("penfro", roles=("admin", "viewer"))
    configure(console, council, provider)
    provider.person = {"sub": "kc-1", "email": council.staff["viewer"]["email"],
                       "email_verified": True}
    provider.trouble = trouble
    client = console.client()
    r = round_trip(client)
    assert r.status_code == 401
    assert client.get("/console/").status_code == 303


def test_a_callback_with_another_state_is_refused(console, provider):
    council = console.council("penfro", roles=("admin", "viewer"))
    configure(console, council, provider)
    provider.person = {"sub": "kc-1", "email": council.staff["viewer"]["email"],
                       "email_verified": True}
    victim = console.client()
    r = victim.get("/console/sign-in/penfro/oidc")
    back = requests.get(r.headers["Location"], allow_redirects=False, timeout=10)
    attacker = console.client()           # a callback URL replayed in another browser
    r = attacker.get(back.headers["Location"].replace("http://localhost", ""))
    assert r.status_code == 401


def test_a_council_without_a_provider_has_no_such_sign_in(console):
    console.council("penfro", roles=())
    assert console.client().get("/console/sign-in/penfro/oidc").status_code == 404
    assert console.client().get("/console/sign-in/nowhere/oidc").status_code == 404
