"""A new council's first journey in the console, in real headless Chromium, in English
and in Welsh: an admin invites an editor by email (the invitation is a notification
sent through notify's own email path), the editor accepts, writes a template in both
languages and previews it (the Preview button without JavaScript, then live as they
type), and a viewer is refused an edit.  axe-core runs over every page (zero
violations) and each page is saved to test-artifacts/console/<lang>/."""
from __future__ import annotations

import re

import pytest

from services.notify.console.catalogues import problems
from tests.console.support import Page, follow, latest_email_to, live_council

WELSH_SMS = "Helo ((name)), bydd y lorri ailgylchu'n dod ddydd Iau. Rhowch y bocsys allan erbyn 7yb."
ENGLISH_SMS = "Hello ((name)), the recycling lorry comes on Thursday. Put the boxes out by 7am."
TEXT = {"en": {"invite": "Invite a team member", "refused": "You cannot do that",
               "sent": "Invitation sent to", "saved": "Template saved"},
        "cy": {"invite": "Gwahodd aelod o'r tîm", "refused": "Ni allwch wneud hynny",
               "sent": "Gwahoddiad wedi'i anfon at", "saved": "Templed wedi'i gadw"}}


def test_every_welsh_string_is_translated():
    assert problems() == []


def wait_for(driver, check, message: str, timeout: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: check(),
                                                                     message=message)


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_invite_accept_template_preview_and_a_viewer_refused(live, browser, lang):
    council = live_council(live, f"penfro-{lang}", roles=("admin", "viewer"))
    t = TEXT[lang]
    page = Page(browser, live.url, lang)

    page.open("/console/sign-in")
    page.set_language(lang)
    page.check("sign-in")
    page.sign_in(council.staff["admin"]["email"])
    wait_for(browser, lambda: "/console/" in browser.current_url and page.h1().startswith(
        "Hello" if lang == "en" else "Helo"), "signed in")
    page.check("home")

    # the admin invites an editor
    page.open("/console/users/")
    page.check("team")
    follow(browser, "id", "invite")
    assert page.h1() == t["invite"]
    follow(browser, "css selector", "button[name=submit]")     # nothing filled in
    assert browser.find_element("class name", "govuk-error-summary").is_displayed()
    page.check("invite-errors")
    editor = f"golygydd-{lang}@penfro.example"
    browser.find_element("id", "email").send_keys(editor)
    browser.find_element("css selector", "input[name=role][value=editor]").click()
    follow(browser, "css selector", "button[name=submit]")
    assert t["sent"] in browser.find_element("class name", "govuk-notification-banner").text
    page.check("team-invited")
    body = latest_email_to(live, editor)
    assert "Mae Admin wedi eich gwahodd" in body and "Admin has invited you" in body
    assert body.index("gwahodd") < body.index("invited")        # Welsh first
    link = re.search(r"http://\S+/console/invitation/\S+", body).group(0)

    # the editor accepts, in a browser of their own (the admin signs out first)
    browser.delete_all_cookies()
    browser.get(link)
    page.set_language(lang)
    page.check("accept-invitation")
    browser.find_element("id", "name").send_keys("Eleri Golygydd")
    browser.find_element("id", "password").send_keys("tri gair hir iawn")
    follow(browser, "css selector", "button[name=submit]")
    wait_for(browser, lambda: "Eleri Golygydd" in page.h1(), "the editor is signed in")
    browser.get(link)                                             # an invitation works once
    assert browser.find_element("tag name", "h1").text != ""
    assert "/invitation/" in browser.current_url

    # a template in both languages, previewed without JavaScript's help first
    page.open("/console/templates/new")
    page.check("template-new")
    browser.find_element("id", "name").send_keys("Ailgylchu / Recycling")
    browser.find_element("id", "body_cy").send_keys(WELSH_SMS.replace("dod", "dŵad"))
    browser.find_element("id", "body_en").send_keys(ENGLISH_SMS)
    follow(browser, "css selector", "button[name=preview]")
    assert browser.find_element("css selector", "[data-testid=encoding-cy]").text == "UCS-2"
    assert browser.find_element("css selector", "[data-testid=letters-cy]").text == "ŵ"
    assert browser.find_element("css selector", "[data-testid=encoding-en]").text == "GSM-7"
    assert browser.find_element("css selector", "[data-testid=fragments-cy]").text == "2"
    assert browser.find_element("css selector", "[data-testid=fragments-en]").text == "1"
    page.check("template-preview")
    # live: taking the ŵ out makes the Welsh GSM-7 again, without a reload
    body_cy = browser.find_element("id", "body_cy")
    body_cy.clear()
    body_cy.send_keys(WELSH_SMS)
    wait_for(browser, lambda: browser.find_element(
        "css selector", "[data-testid=encoding-cy]").text == "GSM-7", "the live preview")
    follow(browser, "css selector", "button[name=submit]")
    assert t["saved"] in browser.find_element("class name", "govuk-notification-banner").text
    page.check("template")
    template_url = browser.current_url
    follow(browser, "id", "edit-template")
    page.check("template-edit")
    page.open(template_url.split(live.url)[1] + "/versions")
    assert "Eleri Golygydd" in browser.find_element("id", "versions").text or \
        "golygydd" in browser.find_element("id", "versions").text
    page.check("template-versions")
    page.open("/console/audit")
    page.check("audit-log")

    # a viewer may look but not edit
    browser.delete_all_cookies()
    page.sign_in(council.staff["viewer"]["email"])
    wait_for(browser, lambda: "/sign-in" not in browser.current_url, "the viewer is signed in")
    browser.get(template_url)
    assert browser.find_elements("id", "edit-template") == []
    browser.get(template_url + "/edit")
    assert page.h1() == t["refused"]
    page.check("refused")


KEYS_TEXT = {"en": ("Your new API key", "revoked"), "cy": ("Eich allwedd API newydd", "dirymu")}


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_an_admins_pages_keys_settings_and_the_error_pages(live, browser, lang):
    council = live_council(live, f"ceredigion-{lang}", roles=("admin", "sender"))
    page = Page(browser, live.url, lang)
    page.sign_in(council.staff["admin"]["email"])
    wait_for(browser, lambda: "/sign-in" not in browser.current_url, "signed in")

    page.open("/console/api-keys/")
    page.check("api-keys")
    follow(browser, "id", "create-key")
    page.check("api-key-new")
    browser.find_element("id", "name").send_keys("CRM")
    browser.find_element("css selector", "input[name=key_type][value=test]").click()
    follow(browser, "css selector", "button[name=submit]")
    assert page.h1() == KEYS_TEXT[lang][0]
    secret = browser.find_element("id", "api-key").text
    assert secret.startswith("crm-" + council.id)
    page.check("api-key-created")
    page.open("/console/api-keys/")
    assert secret[-36:] not in browser.page_source
    follow(browser, "css selector", "#keys form button")
    assert KEYS_TEXT[lang][1] in browser.find_element("class name",
                                                      "govuk-notification-banner").text
    page.check("api-keys-revoked")

    page.open("/console/users/" + council.staff["sender"]["id"])
    page.check("team-member")
    page.open("/console/settings/")
    page.check("settings")
    page.open("/console/templates/")
    page.check("templates")
    page.open("/console/no-such-page")
    page.check("not-found")
    browser.delete_all_cookies()
    page.open("/console/invitation/not-a-real-token")
    page.set_language(lang)
    page.check("invitation-gone")
