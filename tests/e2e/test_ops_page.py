"""The /ops page in a real browser (Debian's Chromium, headless, driven by Selenium).

An operator signs in with the keyboard, sees the platform's figures, leaves the
page open while notifications are sent and a message is dead-lettered, and the
page follows without a reload.  The tab order, the focus style and the live
region are checked as a keyboard or screen-reader user meets them, and a
screenshot is saved to test-artifacts/ops.png.

Chromium is required, never skipped: ``make deps-browser`` installs it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
from notifications_python_client.authentication import create_jwt_token

from services.embedded import Platform

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "test-artifacts" / "ops.png"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1366,900")
TEMPLATE = {"name": "Bin day", "type": "sms",
            "body": {"cy": "Helo ((name)), rhowch y biniau allan heno.",
                     "en": "Hello ((name)), put the bins out tonight."}}
YELLOW = "rgb(255, 221, 0)"   # GOV.UK focus colour


@pytest.fixture
def browser(tmp_path):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the browser tests need Debian's Chromium. "
                    "Run `make deps-browser` (apt-get install -y chromium chromium-driver).")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[dev]'")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def ops_platform(embedded_settings):
    """The embedded platform, with /ops, /open-data and the scrape-time gauges on notify."""
    platform = Platform(embedded_settings)
    platform.migrate()
    platform.start()
    yield platform
    platform.stop()


class Sender:
    """A tenant sending texts through the public API, as a council's system would."""

    def __init__(self, platform: Platform, slug: str):
        self.url = platform.urls()["notify"]
        admin = {"Authorization": f"Bearer {platform.settings.admin_token}"}
        r = requests.post(f"{self.url}/admin/tenants", headers=admin, timeout=10,
                          json={"name": "Cyngor Sir Penfro", "slug": slug})
        assert r.status_code == 201, r.text
        self.key = r.json()["api_key"]
        r = requests.patch(f"{self.url}/admin/tenants/{r.json()['id']}", headers=admin,
                           json={"quiet_hours": None}, timeout=10)
        assert r.status_code == 200, r.text
        r = requests.post(f"{self.url}/api/templates", json=TEMPLATE, headers=self.auth(),
                          timeout=10)
        assert r.status_code == 201, r.text
        self.template_id = r.json()["id"]

    def auth(self) -> dict:
        return {"Authorization": "Bearer " + create_jwt_token(self.key[-36:], self.key[-73:-37])}

    def send(self, count: int) -> None:
        for _ in range(count):
            r = requests.post(f"{self.url}/v2/notifications/sms", headers=self.auth(), timeout=10,
                              json={"phone_number": "07700 900000", "template_id": self.template_id,
                                    "personalisation": {"name": "Siân"}})
            assert r.status_code == 201, r.text


def cell(driver, table_id: str, row_header: str, column: str) -> str | None:
    """The text of a cell of a table on the page, found by row header and column heading."""
    return driver.execute_script("""
        const [tableId, rowHeader, column] = arguments;
        const table = document.getElementById('table-' + tableId);
        const headings = [...table.tHead.rows[0].cells].map(c => c.textContent.trim());
        const row = [...table.tBodies[0].rows].find(r => r.cells[0].textContent.trim() === rowHeader);
        return row ? row.cells[headings.indexOf(column)].textContent.trim() : null;
    """, table_id, row_header, column)


def tab(driver):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(driver).send_keys(Keys.TAB).perform()
    return driver.switch_to.active_element


def press(driver, key_name: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(driver).send_keys(getattr(Keys, key_name)).perform()


def wait_for(driver, check, message: str, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: check(), message=message)


def test_an_operator_signs_in_by_keyboard_and_watches_the_figures_change(ops_platform, browser):
    sender = Sender(ops_platform, "pembrokeshire")
    sender.send(3)
    url = ops_platform.urls()["notify"] + "/ops"

    # sign in with the keyboard alone: skip link first, then the token field
    browser.get(url)
    assert browser.title == "Sign in – Hysbys operations"
    assert browser.execute_script("return document.documentElement.lang") == "en-GB"
    assert tab(browser).get_attribute("textContent") == "Skip to main content"
    field = tab(browser)
    assert field.get_attribute("id") == "token"
    field.send_keys(ops_platform.settings.admin_token)
    press(browser, "ENTER")
    wait_for(browser, lambda: browser.title == "Overview – Hysbys operations", "signed in")
    assert "/ops" in browser.current_url

    # the figures as they stand
    assert cell(browser, "tenants", "pembrokeshire", "Requested") == "3"
    assert cell(browser, "queues", "notify.requests", "Dead-lettered") == "0"
    assert browser.find_element("id", "ops-alerts").get_attribute("aria-live") == "polite"
    for table in browser.find_elements("css selector", "table"):
        assert table.find_element("tag name", "caption").get_attribute("textContent").strip()
        assert all(th.get_attribute("scope") in ("col", "row")
                   for th in table.find_elements("tag name", "th"))

    # the keyboard: skip link, pause, sign out, then each table's region; focus always visible
    focused = [tab(browser) for _ in range(4)]
    assert [f.get_attribute("textContent").strip() for f in focused[:3]] == [
        "Skip to main content", "Pause updates", "Sign out"]
    assert focused[3].get_attribute("role") == "region"
    for element in focused[:3]:
        background, left = browser.execute_script(
            "arguments[0].focus(); return [getComputedStyle(arguments[0]).backgroundColor,"
            " arguments[0].getBoundingClientRect().left]", element)
        assert background == YELLOW and left >= 0, element.get_attribute("textContent")
    skip = focused[0]
    browser.execute_script("arguments[0].focus()", skip)
    press(browser, "ENTER")
    assert browser.switch_to.active_element.get_attribute("id") == "main"
    pause = focused[1]
    browser.execute_script("arguments[0].focus()", pause)
    press(browser, "ENTER")
    assert (pause.get_attribute("aria-pressed"), pause.text) == ("true", "Resume updates")
    press(browser, "ENTER")
    assert (pause.get_attribute("aria-pressed"), pause.text) == ("false", "Pause updates")

    # leave the page open: more sends and a dead letter appear without a reload
    browser.execute_script("window.opsNeverReloaded = true")
    sender.send(2)
    with ops_platform.bus.connection() as conn:
        ops_platform.bus.send_to_queue(conn, "notify.requests.dlq", '{"not": "an event"}',
                                       {"x-error": "poison: not JSON"}, message_id="poison-1")
    wait_for(browser, lambda: cell(browser, "tenants", "pembrokeshire", "Requested") == "5",
             "the tenant's volume to update")
    wait_for(browser, lambda: "notify.requests.dlq holds 1 dead-lettered message(s)"
             in browser.find_element("id", "ops-alerts").text, "the dead letter to be reported")
    assert cell(browser, "queues", "notify.requests", "Dead-lettered") == "1"
    assert browser.execute_script("return window.opsNeverReloaded") is True
    assert int(browser.find_element("id", "ops").get_attribute("data-refreshes")) >= 1

    # readable on a laptop: nothing scrolls sideways at 1366 pixels
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    ARTIFACT.parent.mkdir(exist_ok=True)
    browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1366, max(900, height + 40))
    assert browser.save_screenshot(str(ARTIFACT))
    print(f"\nscreenshot: {ARTIFACT}")
