"""Only operators see /ops: the admin token once on a form (then a cookie), or as a bearer."""
from __future__ import annotations

import hashlib
import re
import time

from itsdangerous import TimestampSigner
from ops_support import ADMIN, notify_app

from services.notify import ops
from services.notify.wiring import build


def set_cookie_header(resp) -> str:
    (header,) = [v for k, v in resp.headers.items() if k == "Set-Cookie"]
    return header


def sign_in(client, token="test-admin-token"):
    return client.post("/ops/login", data={"token": token})


def test_the_page_asks_for_the_admin_token_and_shows_no_figures_until_given_it(client):
    resp = client.get("/ops")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 401
    assert '<label class="ops-label" for="token">Platform admin token</label>' in page
    assert 'type="password"' in page
    assert "Queues" not in page and "notify.requests" not in page


def test_signing_in_sets_an_httponly_strict_cookie_for_ops_only_and_shows_the_figures(client):
    resp = sign_in(client)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/ops")
    cookie = set_cookie_header(resp)
    assert cookie.startswith(f"{ops.COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/ops", f"Max-Age={ops.SESSION_SECONDS}"):
        assert attribute in cookie
    assert "test-admin-token" not in cookie
    page = client.get("/ops")
    assert page.status_code == 200
    assert "notify.requests" in page.get_data(as_text=True)


def test_a_wrong_token_is_refused_with_an_error_summary_linked_to_the_field(client):
    resp = sign_in(client, "guess")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 403
    assert "There is a problem" in page
    assert '<a href="#token">That is not the platform admin token</a>' in page
    assert 'aria-describedby="token-hint token-error"' in page
    assert "Set-Cookie" not in resp.headers
    assert client.get("/ops").status_code == 401


def test_an_empty_token_is_a_400_asking_for_it(client):
    resp = sign_in(client, "  ")
    assert resp.status_code == 400
    assert "Enter the platform admin token" in resp.get_data(as_text=True)


def test_the_json_needs_credentials_and_says_so_in_notify_error_format(client):
    resp = client.get("/ops/data.json")
    assert resp.status_code == 401
    assert resp.json["errors"][0]["error"] == "AuthError"
    assert "sign in at /ops" in resp.json["errors"][0]["message"]


def test_the_admin_token_as_a_bearer_reads_the_json_without_a_cookie(client):
    resp = client.get("/ops/data.json", headers=ADMIN)
    assert resp.status_code == 200
    assert "Set-Cookie" not in resp.headers
    assert resp.headers["Cache-Control"] == "no-store"


def test_a_wrong_bearer_is_forbidden_even_with_a_good_cookie(client):
    sign_in(client)
    resp = client.get("/ops/data.json", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 403


def test_every_refresh_with_the_cookie_renews_it_so_an_open_page_stays_signed_in(client):
    sign_in(client)
    resp = client.get("/ops/data.json")
    assert resp.status_code == 200
    assert set_cookie_header(resp).startswith(f"{ops.COOKIE}=")


def test_rotating_the_admin_token_signs_every_browser_out(notify, scheduler_url, embedded_settings):
    old = notify_app(notify, scheduler_url).test_client()
    sign_in(old)
    cookie = old.get_cookie(ops.COOKIE, path="/ops").value
    after_rotation = build(embedded_settings.with_(admin_token="rotated-token"))
    rotated = notify_app(after_rotation, scheduler_url).test_client()
    rotated.set_cookie(ops.COOKIE, cookie, path="/ops")
    assert rotated.get("/ops/data.json").status_code == 401


def test_a_cookie_older_than_the_session_is_refused(client):
    class SignedLongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - ops.SESSION_SECONDS - 60

    stale = SignedLongAgo("test-admin-token", salt="hysbys-ops", digest_method=hashlib.sha256)
    client.set_cookie(ops.COOKIE, stale.sign(b"operator").decode(), path="/ops")
    assert client.get("/ops/data.json").status_code == 401
    fresh = TimestampSigner("test-admin-token", salt="hysbys-ops", digest_method=hashlib.sha256)
    client.set_cookie(ops.COOKIE, fresh.sign(b"operator").decode(), path="/ops")
    assert client.get("/ops/data.json").status_code == 200


def test_signing_out_clears_the_cookie(client):
    sign_in(client)
    resp = client.post("/ops/logout")
    assert resp.status_code == 303
    assert re.search(rf"{ops.COOKIE}=;.*Expires=Thu, 01 Jan 1970", set_cookie_header(resp))
    assert client.get("/ops").status_code == 401


def test_the_page_runs_no_inline_script_and_forbids_framing(client):
    sign_in(client)
    resp = client.get("/ops")
    page = resp.get_data(as_text=True)
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/ops/static/ops.js" defer>']
    assert ' style="' not in page and "onclick" not in page
