"""Helpers for the console's tests (their fixtures are in conftest.py).

Two kinds of test use them:

* Flask test-client tests (fast, SQLite and the in-memory bus): ``console`` gives a
  :class:`Console` — notify's app with a clock the test moves, councils and staff
  made directly, and ``signed_in(role)`` clients that carry a CSRF token.
* Browser tests in headless Chromium (selenium, as tests/e2e/test_ops_page.py):
  ``live`` starts the embedded platform on real ports; ``browser`` is Chromium;
  :class:`Page` signs in by the form, switches language, runs axe-core over the page
  (zero violations) and saves a full-page screenshot to test-artifacts/console/.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
import sqlalchemy as sa

from services.embedded import Platform
from services.notify import tenants
from services.notify.console import auth
from services.notify.console.models import ROLES
from shared import pii

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
BUILT = ROOT / "services" / "notify" / "console" / "static" / "build" / "console.css"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900")
PASSWORD = "correct horse battery staple"   # nosec B105 - a test account's
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                  r'name="csrf_token" value="([^"]+)"')


class Clock:
    """The console's clock, moved by the test (lockout, invitation expiry)."""

    def __init__(self):
        self.now = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += dt.timedelta(**kwargs)


@dataclass
class Council:
    id: str
    slug: str
    api_key: str
    staff: dict[str, dict] = field(default_factory=dict)    # role -> {"id", "email"}


def bearer(api_key: str) -> dict:
    """The Authorization header notifications-python-client would send with ``api_key``."""
    from notifications_python_client.authentication import create_jwt_token

    return {"Authorization": "Bearer " + create_jwt_token(api_key[-36:], api_key[-73:-37])}


def csrf_token(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no csrf_token on the page"
    return m.group(1) or m.group(2)


class Console:
    def __init__(self, service, clock: Clock):
        self.service = service
        self.db = service.runtime.db
        self.clock = clock
        self.app = service.create_app()
        from services.notify.console import init_app  # noqa: F401 - documented entry point

        self.app.extensions["hysbys.console"]["clock"] = clock
        self.app.config["TESTING"] = True

    def council(self, slug: str = "penfro", *, roles=ROLES) -> Council:
        with self.db.transaction() as s:
            created = tenants.create_tenant(s, self.service.runtime.box, name=f"Cyngor {slug}",
                                            slug=slug)
        council = Council(created.id, slug, created.api_key)
        for role in roles:
            council.staff[role] = self.staff(council, role)
        return council

    def staff(self, council: Council, role: str, email: str | None = None) -> dict:
        email = email or f"{role}-{uuid.uuid4().hex[:6]}@{council.slug}.example"
        with self.db.transaction() as s:
            user = auth.create_user(s, tenant_id=council.id, email=email, name=role.title(),
                                    role=role, password=PASSWORD, now=self.clock())
            return {"id": user.id, "email": email}

    def client(self):
        return self.app.test_client()

    def sign_in(self, client, email: str, password: str = PASSWORD, lang: str | None = None):
        if lang:
            client.get(f"/console/language/{lang}")
        page = client.get("/console/sign-in")
        return client.post("/console/sign-in", data={
            "email": email, "password": password, "csrf_token": csrf_token(page.text)})

    def signed_in(self, council: Council, role: str):
        client = self.client()
        r = self.sign_in(client, council.staff[role]["email"])
        assert r.status_code == 303, r.text
        return client

    def post(self, client, path: str, data: dict | None = None, *, form_page: str | None = None):
        """POST with the session's CSRF token (read from ``form_page``, default the home page)."""
        page = client.get(form_page or "/console/")
        return client.post(path, data={**(data or {}), "csrf_token": csrf_token(page.text)})


def live_council(platform: Platform, slug: str, roles=("admin",)) -> Council:
    admin = {"Authorization": f"Bearer {platform.settings.admin_token}"}
    r = requests.post(f"{platform.url}/admin/tenants", headers=admin, timeout=10,
                      json={"name": f"Cyngor {slug.title()}", "slug": slug})
    assert r.status_code == 201, r.text
    council = Council(r.json()["id"], slug, r.json()["api_key"])
    db = platform.notify.runtime.db
    for role in roles:
        email = f"{role}@{slug}.example"
        with db.transaction() as s:
            user = auth.create_user(s, tenant_id=council.id, email=email, name=role.title(),
                                    role=role, password=PASSWORD,
                                    now=dt.datetime.now(dt.UTC))
            council.staff[role] = {"id": user.id, "email": email}
    return council


def latest_email_to(platform: Platform, address: str) -> str:
    """The body of the newest email notify stored for ``address`` (the invitation's)."""
    from services.notify.models import Notification

    with platform.notify.runtime.db.read() as s:
        n = s.scalars(sa.select(Notification).where(
            Notification.recipient_hash == pii.lookup_hash(s, address),
            Notification.channel == "email")
            .order_by(Notification.created_at.desc())).first()
        assert n is not None, f"no email to {address}"
        return n.body


def follow(driver, by: str, selector: str, timeout: float = 20) -> None:
    """Click something that loads a new page and wait until that page has loaded.

    A click returns before the browser has left the old page, so reading the next
    page straight after it can find the old page's elements (or ones gone stale as the
    new page replaces them).  Waiting for the old ``<html>`` to go stale, then for the
    new document to be complete, makes the next read see the new page.
    """
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element("tag name", "html")
    driver.find_element(by, selector).click()
    wait = WebDriverWait(driver, timeout, poll_frequency=0.1)
    wait.until(expected_conditions.staleness_of(old), message=f"{selector}: no new page")
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete",
               message=f"{selector}: the new page did not finish loading")


class Page:
    """One browser in the console: sign in, change language, check, screenshot."""

    def __init__(self, driver, base_url: str, lang: str = "en"):
        self.d = driver
        self.base = base_url
        self.lang = lang

    def open(self, path: str) -> None:
        self.d.get(self.base + path)

    def set_language(self, lang: str) -> None:
        """Follow the Cymraeg / English link if the page is not in ``lang`` yet."""
        self.lang = lang
        current = self.d.execute_script("return document.documentElement.lang")
        if not current.startswith(lang):
            follow(self.d, "id", "language-switch")
        assert self.d.execute_script("return document.documentElement.lang").startswith(lang)

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.open("/console/sign-in")
        self.set_language(self.lang)
        self.d.find_element("id", "email").send_keys(email)
        self.d.find_element("id", "password").send_keys(password)
        follow(self.d, "css selector", "form button[type=submit][name=submit]")

    def follow(self, by: str, selector: str) -> None:
        follow(self.d, by, selector)

    def h1(self) -> str:
        return self.d.find_element("tag name", "h1").text

    def axe(self) -> list[dict]:
        """axe-core's violations on the page as it stands (WCAG 2.0-2.2 A and AA rules)."""
        self.d.execute_script(AXE.read_text())
        result = self.d.execute_async_script("""
            const done = arguments[arguments.length - 1];
            axe.run(document, {runOnly: {type: 'tag', values:
                ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})
              .then(r => done(JSON.stringify(r.violations)),
                    e => done(JSON.stringify([{id: 'axe-error', description: String(e),
                                               nodes: []}])));
        """)
        return json.loads(result)

    def check(self, name: str) -> Path:
        """axe over the page (zero violations), then a full-page screenshot."""
        violations = self.axe()
        assert violations == [], f"{name} ({self.lang}): " + "; ".join(
            f"{v['id']}: {v['description']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in violations)
        return self.screenshot(name)

    def screenshot(self, name: str) -> Path:
        path = ARTIFACTS / self.lang / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.d.execute_script("document.activeElement && document.activeElement.blur();"
                              "window.scrollTo(0, 0)")
        height = self.d.execute_script("return document.documentElement.scrollHeight")
        self.d.set_window_size(1280, max(900, min(height + 40, 6000)))
        assert self.d.save_screenshot(str(path))
        self.d.set_window_size(1280, 900)
        return path
