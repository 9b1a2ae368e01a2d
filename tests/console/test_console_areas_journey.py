"""A council's journeys through the console's areas in real headless Chromium, in English
and in Welsh, on the embedded platform (the real scheduler over HTTP; inbound's
conversations from a fake on 127.0.0.1, as inbound's API is being built alongside):

* upload subscribers with a bad row → set up a campaign → dry run → start → results,
  the broadcast really sent by the ticker and delivered by the simulator;
* a citizen's reply seen in the inbox and answered;
* rounds, the calendar, service requests, reports and sending by hand, looked at
  (appointments need the list that h1 adds to the scheduler: a page test covers them).

axe-core runs over every page (zero violations) and each page is saved to
test-artifacts/console/<lang>/."""
from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
import requests
from notifications_python_client.authentication import create_jwt_token

from services.embedded import Platform
from tests.console.areas_support import FakeInboundServer
from tests.console.support import Page, follow, live_council

LONDON = ZoneInfo("Europe/London")
CSV = "phone,language,round\n07700900000,cy,A\nnot a number,en,A\n07700900111,en,A\n"
TEXT = {"en": {"home": "Hello", "paused": "Paused", "scheduled": "Scheduled",
               "answered": "Your answer is on its way."},
        "cy": {"home": "Helo", "paused": "Wedi’i oedi", "scheduled": "Wedi’i drefnu",
               "answered": "Mae eich ateb ar ei ffordd."}}


@pytest.fixture
def inbound_fake(embedded_settings):
    from shared.crypto import SecretBox

    server = FakeInboundServer(SecretBox(embedded_settings.secret_key))
    yield server
    server.stop()


class BehindClock:
    """The scheduler's clock in these journeys: real time, ``behind`` it until
    :meth:`catch_up`.  A broadcast booked "two minutes from now" by the scheduler's API is
    then due at once for its ticker, and already past for notify's dispatcher (which
    sends nothing before the ``not_before`` the ticker gives it), so the journey need not
    wait for the minute to come round (it waited one to two minutes per language)."""

    def __init__(self, behind: dt.timedelta = dt.timedelta(minutes=5)):
        self.behind = behind

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) - self.behind

    def catch_up(self) -> None:
        self.behind = dt.timedelta(0)


@pytest.fixture
def live_areas(embedded_settings, inbound_fake):
    settings = embedded_settings.with_(internal_urls={"inbound": inbound_fake.url})
    platform = Platform(settings)
    platform.scheduler.clock = BehindClock()
    platform.migrate()
    platform.start()
    platform.url = platform.urls()["notify"]
    yield platform
    platform.stop()


def bearer(council) -> dict:
    return {"Authorization": "Bearer " + create_jwt_token(council.api_key[-36:], council.id)}


def ready_council(platform, slug: str):
    """A council with staff, quiet hours off (the journey must pass at any hour), known to
    the scheduler, with a bilingual SMS template."""
    council = live_council(platform, slug, roles=("editor", "sender", "viewer"))
    admin = {"Authorization": f"Bearer {platform.settings.admin_token}"}
    r = requests.patch(f"{platform.url}/admin/tenants/{council.id}", headers=admin,
                       json={"quiet_hours": None}, timeout=10)
    assert r.status_code == 200, r.text
    scheduler = platform.urls()["scheduler"]
    deadline = time.monotonic() + 20
    while requests.get(f"{scheduler}/api/rounds", headers=bearer(council),
                       timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the scheduler never heard of the council"
        time.sleep(0.2)
    r = requests.post(f"{platform.url}/api/templates", headers=bearer(council), timeout=10,
                      json={"name": "Biniau / Bins", "type": "sms",
                            "body": {"cy": "Biniau allan yfory, rownd ((round))",
                                     "en": "Bins out tomorrow, round ((round))"}})
    assert r.status_code == 201, r.text
    council.template_id = r.json()["id"]
    return council


def wait_for(driver, check, message: str, timeout: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: check(),
                                                                     message=message)


def submit(browser) -> None:
    follow(browser, "css selector", "main form button[name=submit]")


def fill(browser, field: str, text: str) -> None:
    element = browser.find_element("id", field)
    element.clear()
    element.send_keys(text)


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_upload_with_a_bad_row_then_a_campaign_dry_run_start_and_results(
        live_areas, browser, tmp_path, lang):
    council = ready_council(live_areas, f"penfro-{lang}")
    page = Page(browser, live_areas.url, lang)
    page.sign_in(council.staff["editor"]["email"])
    wait_for(browser, lambda: page.h1().startswith(TEXT[lang]["home"]), "signed in")

    page.open("/console/audiences/upload")
    page.check("audiences-upload")
    path = tmp_path / "tanysgrifwyr.csv"
    path.write_text(CSV)
    browser.find_element("id", "file").send_keys(str(path))
    submit(browser)
    errors = browser.find_element("css selector", "[data-testid=row-errors]")
    assert "not a number" in errors.text and "3" in errors.text
    assert browser.find_element("css selector", "[data-testid=created]").text == "2"
    page.check("audiences-upload-result")
    page.open("/console/audiences/")
    assert "+447700900111" in browser.find_element("css selector",
                                                   "[data-testid=audiences-list]").text
    page.check("audiences-list")
    follow(browser, "link text", "+447700900111")
    page.check("audiences-detail")
    detail = browser.current_url.removeprefix(live_areas.url)
    page.open(f"{detail}/edit")
    page.check("audiences-edit")
    page.open(f"{detail}/erase")
    page.check("audiences-erase")

    # a broadcast a minute or two from the scheduler's now; its clock then catches up,
    # so the ticker really sends it
    clock = live_areas.scheduler.clock
    when = (clock().astimezone(LONDON) + dt.timedelta(minutes=2)).replace(second=0,
                                                                          microsecond=0)
    page.open("/console/campaigns/new")
    page.check("campaign-step-start")
    fill(browser, "name", "Biniau / Bins")
    browser.find_element("css selector", "input[name=kind][value=broadcast]").click()
    browser.find_element("css selector",
                         f"input[name=template][value='{council.template_id}']").click()
    submit(browser)
    fill(browser, "audience", "round = A")
    page.check("campaign-step-audience")
    submit(browser)
    fill(browser, "send_on", when.strftime("%d/%m/%Y"))
    fill(browser, "send_at", when.strftime("%H:%M"))
    page.check("campaign-step-schedule")
    submit(browser)
    page.check("campaign-step-window")
    submit(browser)
    page.check("campaign-check")
    follow(browser, "id", "create-campaign")

    wait_for(browser, lambda: "/dry-run" in browser.current_url, "the dry run")
    assert browser.find_element("css selector", "[data-testid=recipients]").text == "2"
    sample = browser.find_element("css selector", "[data-testid=dry-run-sample]").text
    assert "Biniau allan yfory, rownd A" in sample and "Bins out tomorrow, round A" in sample
    page.check("campaign-dry-run")
    follow(browser, "css selector", "main form[action$='/resume'] button")
    wait_for(browser, lambda: TEXT[lang]["scheduled"] in browser.find_element(
        "css selector", "[data-testid=campaign-status]").text, "started")
    campaign_url = browser.current_url

    scheduler = live_areas.urls()["scheduler"]
    campaign_id = campaign_url.rstrip("/").rsplit("/", 1)[-1]
    clock.catch_up()
    live_areas.scheduler.nudge()
    deadline = time.monotonic() + 120
    while True:
        body = requests.get(f"{scheduler}/api/campaigns/{campaign_id}",
                            headers=bearer(council), timeout=5).json()
        if body["totals"]["delivered"] == 2:
            break
        assert time.monotonic() < deadline, body["totals"]
        time.sleep(1)
    page.open(campaign_url.removeprefix(live_areas.url))
    assert browser.find_element("css selector", "[data-testid=delivered]").text == "2"
    assert browser.find_elements("css selector", "svg.hysbys-chart")
    page.check("campaign-results")
    page.open("/console/campaigns/")
    page.check("campaigns-list")
    page.open("/console/reports/")
    assert "+447700900000" in browser.find_element("css selector",
                                                   "[data-testid=report-rows]").text
    page.check("reports")


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_a_reply_is_seen_in_the_inbox_and_answered(live_areas, browser, inbound_fake, lang):
    council = ready_council(live_areas, f"sir-{lang}")
    inbound = inbound_fake.inbound(council.id)
    cid = inbound.add_conversation("+447700900222", "Ni chasglwyd fy min ddydd Mawrth",
                                   language="cy")
    page = Page(browser, live_areas.url, lang)
    page.sign_in(council.staff["sender"]["email"])
    wait_for(browser, lambda: page.h1().startswith(TEXT[lang]["home"]), "signed in")
    page.open("/console/inbox/")
    assert "Ni chasglwyd fy min" in browser.find_element("css selector",
                                                         "[data-testid=inbox-list]").text
    page.check("inbox")
    page.open(f"/console/inbox/conversation/{cid}")
    page.check("inbox-conversation")
    fill(browser, "body", "Mae’n ddrwg gennym. Bydd y lori yn dod yfory.")
    follow(browser, "css selector", "form[action$='/answer'] button[name=submit]")
    wait_for(browser, lambda: TEXT[lang]["answered"] in browser.page_source, "answered")
    assert "Bydd y lori yn dod yfory." in browser.find_element(
        "css selector", "[data-testid=thread]").text
    assert inbound.store["answers"][0]["author"] == council.staff["sender"]["email"]
    page.check("inbox-answered")


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_rounds_calendar_requests_and_sending_by_hand(live_areas, browser, lang):
    council = ready_council(live_areas, f"powys-{lang}")
    page = Page(browser, live_areas.url, lang)
    page.sign_in(council.staff["editor"]["email"])
    wait_for(browser, lambda: page.h1().startswith(TEXT[lang]["home"]), "signed in")
    page.open("/console/rounds/new")
    fill(browser, "code", "A")
    fill(browser, "name", "Tregaron")
    browser.find_element("css selector", "input[name=frequency][value='2']").click()
    browser.find_element("css selector", "input[name=day][value=TU]").click()
    fill(browser, "first", "1/12/2026")
    page.check("rounds-new")
    submit(browser)
    words = browser.find_element("css selector", "[data-testid=round-words]").text
    assert ("bob yn ail ddydd Mawrth" if lang == "cy" else "every other Tuesday") in words
    page.check("round-detail")
    page.open("/console/rounds/changes")
    page.check("rounds-changes")
    page.open("/console/rounds/")
    page.check("rounds-list")
    page.open("/console/rounds/calendar")
    page.check("rounds-calendar")
    page.open("/console/inbox/requests")
    page.check("service-requests")

    page = Page(browser, live_areas.url, lang)
    browser.delete_all_cookies()
    page.sign_in(council.staff["sender"]["email"])
    wait_for(browser, lambda: page.h1().startswith(TEXT[lang]["home"]), "signed in")
    page.open("/console/send/")
    page.check("send")
    browser.find_element("css selector",
                         f"input[name=template][value='{council.template_id}']").click()
    fill(browser, "recipients", "07700900000")
    fill(browser, "personalisation", "round = B")
    follow(browser, "css selector", "main form button[name=preview]")
    assert "round B" in browser.find_element("css selector", "[data-testid=send-preview]").text
    page.check("send-preview")
    follow(browser, "id", "send-now")
    wait_for(browser, lambda: browser.find_elements("css selector", "[data-testid=sent]"),
             "the sent page")
    page.check("send-sent")
