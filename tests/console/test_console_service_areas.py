# ruff: noqa: F811  (the backends fixture is imported from areas_support)
"""The console's areas through Flask's test client: the real scheduler behind them (a WSGI
transport, its real routes and authentication of the console's token), a fake inbound,
both languages and every role."""
from __future__ import annotations

import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa

from services.notify import sending, templates
from services.notify.console.models import ROLES
from services.notify.models import Notification
from services.notify.sending import find_suppression
from shared.outbox import OutboxRow
from shared.tenancy import Tenant
from tests.console.areas_support import backends  # noqa: F401 - the fixture
from tests.console.support import csrf_token

INDEXES = ["/console/audiences/", "/console/rounds/", "/console/rounds/calendar",
           "/console/campaigns/", "/console/appointments/", "/console/inbox/",
           "/console/inbox/requests", "/console/reports/"]
WELSH = {"/console/audiences/": "Cynulleidfaoedd", "/console/rounds/": "Rowndiau a chasgliadau",
         "/console/rounds/calendar": "Yr wyth wythnos nesaf", "/console/campaigns/": "Ymgyrchoedd",
         "/console/appointments/": "Apwyntiadau", "/console/inbox/": "Mewnflwch",
         "/console/inbox/requests": "Ceisiadau am wasanaeth",
         "/console/reports/": "Adroddiadau", "/console/send/": "Anfon neges"}


@pytest.fixture
def council(console, backends):
    c = console.council("penfro")
    backends.replicate(c)
    return c


def signed(console, council, role: str, lang: str = "en"):
    client = console.signed_in(council, role)
    client.get(f"/console/language/{lang}")
    return client


def post(console, client, path: str, data: dict, form_page: str):
    page = client.get(form_page)
    assert page.status_code == 200, page.text
    return client.post(path, data={**data, "csrf_token": csrf_token(page.text)})


def test_every_area_page_opens_in_welsh_and_in_english_for_every_role(console, council):
    for role in ROLES:
        for lang in ("cy", "en"):
            client = signed(console, council, role, lang)
            pages = INDEXES + (["/console/send/"] if role in ("admin", "sender") else [])
            for path in pages:
                r = client.get(path)
                assert r.status_code == 200, (role, lang, path, r.text[:300])
                assert 'data-testid="service-unavailable"' not in r.text, path
                if lang == "cy":
                    assert WELSH[path] in r.text, (path, role)
                    assert '<html lang="cy"' in r.text


def test_a_role_sees_only_the_buttons_it_may_press(console, council):
    assert "upload-subscribers" in signed(console, council, "editor").get(
        "/console/audiences/").text
    viewer = signed(console, council, "viewer")
    assert "upload-subscribers" not in viewer.get("/console/audiences/").text
    assert "new-campaign" not in viewer.get("/console/campaigns/").text
    assert viewer.get("/console/send/").status_code == 403
    assert viewer.get("/console/audiences/upload").status_code == 403


CSV = (b"phone,language,round\n07700900001,cy,A\nnot a number,en,A\n"
       b"07700900002,en,A\n07700900002,cy,B\n")


def upload(console, client, body: bytes = CSV):
    page = client.get("/console/audiences/upload")
    return client.post("/console/audiences/upload", data={
        "csrf_token": csrf_token(page.text), "file": (io.BytesIO(body), "tanysgrifwyr.csv")},
        content_type="multipart/form-data")


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_an_upload_shows_each_bad_row_against_its_own_cells_and_keeps_the_good_rows(
        console, council, lang):
    client = signed(console, council, "editor", lang)
    r = upload(console, client)
    assert r.status_code == 200, r.text
    created = re.search(r'data-testid="created">([^<]+)<', r.text).group(1)
    assert created.strip() == "2"
    table = r.text[r.text.index('data-testid="row-errors"'):]
    assert ">3<" in table and "not a number" in table          # row 3, its own cells
    assert ">5<" in table and "duplicate" in table              # a second 07700900002
    assert ("Rhesi i’w cywiro" if lang == "cy" else "Rows to correct") in r.text
    listing = client.get("/console/audiences/").text
    assert "+447700900001" in listing and "+447700900002" in listing
    assert "not a number" not in listing


def test_a_subscriber_is_found_changed_opted_out_and_erased(console, council):
    client = signed(console, council, "editor")
    upload(console, client)
    found = client.get("/console/audiences/?q=07700+900001").text
    sid = re.search(r'/console/audiences/([0-9a-f-]{36})"', found).group(1)
    assert "+447700900002" not in found
    r = post(console, client, f"/console/audiences/{sid}/edit",
             {"language": "en", "attributes": "round = B\nuprn = 100100000001",
              "opted_out": "yes"}, form_page=f"/console/audiences/{sid}/edit")
    assert r.status_code == 303, r.text
    page = client.get(f"/console/audiences/{sid}").text
    assert "uprn = 100100000001" in page and "round = B" in page and "English" in page
    assert "Opted out: gets no messages" in page
    with console.db.read() as s:
        assert find_suppression(s, council.id, "sms", "+447700900001").source == "team"
        bodies = s.scalars(sa.select(OutboxRow.body)).all()
    assert any('"subscriber.opted_out"' in b and "+447700900001" in b for b in bodies)
    r = post(console, client, f"/console/audiences/{sid}/erase", {},
             form_page=f"/console/audiences/{sid}/erase")
    assert r.status_code == 303
    assert client.get(f"/console/audiences/{sid}").status_code == 404


def test_another_councils_subscriber_is_the_same_404_as_an_unknown_one(console, council,
                                                                       backends):
    other = console.council("powys")
    backends.replicate(other)
    upload(console, signed(console, other, "editor"))
    theirs = signed(console, other, "viewer").get("/console/audiences/").text
    sid = re.search(r'/console/audiences/([0-9a-f-]{36})"', theirs).group(1)
    mine = signed(console, council, "admin")
    stranger = mine.get(f"/console/audiences/{sid}")
    unknown = mine.get("/console/audiences/00000000-0000-4000-8000-000000000000")
    assert stranger.status_code == unknown.status_code == 404
    assert mine.get(f"/console/audiences/{sid}/edit").status_code == 404


def new_round(console, client, code="A", frequency="2", day="TU", first="1/12/2026"):
    return post(console, client, "/console/rounds/new",
                {"code": code, "name": f"Round {code}", "frequency": frequency, "day": day,
                 "first": first}, form_page="/console/rounds/new")


def test_a_round_set_up_from_plain_choices_reads_in_words_in_both_languages(console, council):
    client = signed(console, council, "editor")
    r = new_round(console, client)
    assert r.status_code == 303, r.text
    assert "every other Tuesday" in client.get("/console/rounds/").text
    client.get("/console/language/cy")
    assert "bob yn ail ddydd Mawrth" in client.get("/console/rounds/").text
    detail = client.get("/console/rounds/round/A").text
    assert "bob yn ail ddydd Mawrth" in detail and "every other Tuesday" in detail
    assert "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU" in detail


def test_the_calendar_shows_eight_weeks_and_a_christmas_move(console, council, clock):
    client = signed(console, council, "editor")
    new_round(console, client, first="1/12/2026")
    r = post(console, client, "/console/rounds/changes",
             {"day_from": "29/12/2026", "day_to": "31/12/2026", "rounds": ""},
             form_page="/console/rounds/changes")
    assert r.status_code == 303, r.text
    page = client.get("/console/rounds/calendar").text
    table = page[page.index('data-testid="calendar"'):]
    assert table.count('<th scope="row"') == 8
    # fortnightly from 1 December: 15 December, then 29 December moved to the 31st
    assert "moved from 29 Dec" in table
    listed = client.get("/console/rounds/").text
    assert "Tuesday 29 December moved to Thursday 31 December" in listed


def test_a_bad_date_is_an_error_against_its_field_not_a_500(console, council):
    client = signed(console, council, "editor")
    r = new_round(console, client, first="31/2/2027")
    assert r.status_code == 400 and "Enter a real date" in r.text
    assert "govuk-error-summary" in r.text


def sms_template(console, council, en="Bins out tomorrow, ((round))",
                 cy="Biniau allan yfory, ((round))") -> str:
    with console.db.transaction() as s:
        t = templates.create_template(s, council.id, {
            "name": "Bin reminder", "type": "sms", "body": {"en": en, "cy": cy},
            "subject": {}})
        return t.id


def set_up_campaign(console, client, template_id: str, *, kind="broadcast",
                    send_on="14/12/2026", at="10:00") -> str:
    steps = [("/console/campaigns/new", {"name": "Christmas bins", "kind": kind,
                                         "template": template_id}),
             ("/console/campaigns/new/audience", {"audience": "round = A", "rounds": ""}),
             ("/console/campaigns/new/schedule", {"send_on": send_on, "send_at": at,
                                                  "days_before": ""}),
             ("/console/campaigns/new/window", {"window_start": "", "window_end": ""})]
    for path, data in steps:
        r = post(console, client, path, data, form_page=path)
        assert r.status_code == 303, (path, r.text[:2000])
    r = post(console, client, "/console/campaigns/new/check", {},
             form_page="/console/campaigns/new/check")
    assert r.status_code == 303, r.text
    return re.search(r"/console/campaigns/([0-9a-f-]{36})/dry-run", r.headers["Location"]).group(1)


@pytest.mark.parametrize("lang", ["en", "cy"])
def test_a_campaign_is_set_up_step_by_step_paused_dry_run_then_started_and_paused(
        console, council, lang, clock):
    client = signed(console, council, "editor", lang)
    upload(console, client)
    tid = sms_template(console, council)
    send_on = (clock.now + dt.timedelta(days=11)).strftime("%d/%m/%Y")
    cid = set_up_campaign(console, client, tid, send_on=send_on)
    detail = client.get(f"/console/campaigns/{cid}").text
    assert ("Wedi’i oedi" if lang == "cy" else "Paused") in detail
    run = client.get(f"/console/campaigns/{cid}/dry-run").text
    recipients = re.search(r'data-testid="recipients">([^<]+)<', run).group(1).strip()
    assert recipients == "2"                       # round = A: the two good rows
    assert "Biniau allan yfory, A" in run and "Bins out tomorrow, A" in run
    assert "GSM-7" in run and "£" in run
    r = post(console, client, f"/console/campaigns/{cid}/resume", {},
             form_page=f"/console/campaigns/{cid}")
    assert r.status_code == 303
    page = client.get(f"/console/campaigns/{cid}").text
    assert ("Wedi’i drefnu" if lang == "cy" else "Scheduled") in page
    r = post(console, client, f"/console/campaigns/{cid}/pause", {},
             form_page=f"/console/campaigns/{cid}")
    assert r.status_code == 303
    assert ("Wedi’i oedi" if lang == "cy" else "Paused") in client.get(
        f"/console/campaigns/{cid}").text


def test_a_campaigns_results_are_a_chart_and_a_table_of_the_same_numbers(console, council,
                                                                         backends, clock):
    from services.scheduler.models import CampaignStat, Occurrence

    client = signed(console, council, "editor")
    upload(console, client)
    cid = set_up_campaign(console, client, sms_template(console, council),
                          send_on=(clock.now + dt.timedelta(days=2)).strftime("%d/%m/%Y"))
    with backends.scheduler.runtime.db.transaction() as s:
        occ = s.scalars(sa.select(Occurrence).where(Occurrence.campaign_id == cid)).one()
        occ.requested, occ.status = 2, "completed"
        for status, count in (("delivered", 1), ("permanent-failure", 1)):
            s.add(CampaignStat(campaign_id=cid, tenant_id=council.id,
                               occurrence_key=occ.occurrence_key, status=status, count=count))
    page = client.get(f"/console/campaigns/{cid}").text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="hysbys-chart" role="img"' in page
    assert re.search(r'data-testid="delivered">1<', page)
    table = page[page.index('data-testid="occurrences"'):]
    assert re.search(r"numeric\">2</td>\s*<td[^>]*>1</td>\s*<td[^>]*>1</td>", table)


def test_appointments_today_and_upcoming_with_reminders(console, council, backends, clock):
    from notifications_python_client.authentication import create_jwt_token

    tid = sms_template(console, council, en="Clinic ((day))", cy="Clinig ((day))")
    app = backends.scheduler.create_app().test_client()
    secret = council.api_key[-36:]
    headers = {"Authorization": f"Bearer {create_jwt_token(secret, council.id)}"}
    r = app.post("/api/campaigns", json={"name": "Renal", "kind": "appointment",
                                          "template_id": tid, "channel": "sms",
                                          "schedule": {"offsets": [{"days_before": 1}]}},
                 headers=headers)
    assert r.status_code == 201, r.get_json()
    campaign = r.get_json()["id"]
    for ref, when in (("RENAL-1", clock.now + dt.timedelta(hours=3)),
                      ("RENAL-2", clock.now + dt.timedelta(days=3))):
        r = app.post("/api/appointments", json={
            "external_reference": ref, "campaign_id": campaign, "phone": "07700900111",
            "language": "cy", "starts_at": when.isoformat(), "personalisation": {"day": "x"}},
            headers={"Authorization": f"Bearer {create_jwt_token(secret, council.id)}"})
        assert r.status_code == 201, r.get_json()
        backends.booked.setdefault(council.id, []).append(ref)
    client = signed(console, council, "viewer", "cy")
    page = client.get("/console/appointments/").text
    today = page[page.index('data-testid="appointments-today"'):
                 page.index('data-testid="appointments-upcoming"')]
    assert "RENAL-1" in today and "RENAL-2" not in today
    assert "RENAL-2" in page[page.index('data-testid="appointments-upcoming"'):]
    detail = client.get("/console/appointments/RENAL-2").text
    assert 'data-testid="reminders"' in detail and "Nodiadau atgoffa" in detail


def test_a_reply_is_seen_in_the_inbox_answered_assigned_and_closed(console, council, backends):
    inbound = backends.inbound(council)
    cid = inbound.add_conversation("+447700900123", "Mae’r bin heb ei gasglu", language="cy")
    sender = signed(console, council, "sender", "cy")
    assert "Mae’r bin heb ei gasglu" in sender.get("/console/inbox/").text
    page = f"/console/inbox/conversation/{cid}"
    r = post(console, sender, f"{page}/answer", {"body": "Diolch, fe ddown yfory."},
             form_page=page)
    assert r.status_code == 303, r.text
    staff = council.staff["sender"]["email"]
    assert inbound.store["answers"] == [{"conversation": cid, "body": "Diolch, fe ddown yfory.",
                                         "author": staff}]
    assert "Diolch, fe ddown yfory." in sender.get(page).text
    r = post(console, sender, f"{page}/assign", {"assigned_to": staff}, form_page=page)
    assert r.status_code == 303
    assert "+447700900123" in sender.get("/console/inbox/?mine=1").text
    r = post(console, sender, f"{page}/close", {}, form_page=page)
    assert r.status_code == 303
    assert inbound.store["changes"][-1] == {"conversation": cid, "status": "closed"}
    assert "+447700900123" not in sender.get("/console/inbox/").text


def test_a_citizen_of_unknown_language_is_answered_in_both_and_both_are_required(
        console, council, backends):
    inbound = backends.inbound(council)
    cid = inbound.add_conversation("+447700900124", "Help", language=None)
    sender = signed(console, council, "sender")
    page = f"/console/inbox/conversation/{cid}"
    r = post(console, sender, f"{page}/answer", {"body_cy": "Diolch", "body_en": ""},
             form_page=page)
    assert r.status_code == 400 and "Write your answer in English" in r.text
    assert inbound.store["answers"] == []
    r = post(console, sender, f"{page}/answer", {"body_cy": "Diolch", "body_en": "Thank you"},
             form_page=page)
    assert r.status_code == 303
    assert inbound.store["answers"][0]["body_cy"] == "Diolch"


def test_a_viewer_reads_the_inbox_but_cannot_answer(console, council, backends):
    cid = backends.inbound(council).add_conversation("+447700900125", "Pryd?")
    viewer = signed(console, council, "viewer")
    page = viewer.get(f"/console/inbox/conversation/{cid}")
    assert page.status_code == 200 and "Pryd?" in page.text and "Send answer" not in page.text
    r = post(console, viewer, f"/console/inbox/conversation/{cid}/answer", {"body": "x"},
             form_page="/console/")
    assert r.status_code == 403


def store_sent(console, council, recipient: str, status: str, when: dt.datetime):
    tid = sms_template(console, council, en="Hello", cy="Helo")
    with console.db.transaction() as s:
        tenant = s.get(Tenant, council.id)
        n = sending.accept(s, tenant, sending.SendRequest(
            channel="sms", template_id=tid, recipient=recipient, personalisation={},
            language="cy"), now=when)
        n.status, n.created_at = status, when


def test_reports_find_who_was_sent_what_chart_the_rate_and_export_csv(console, council, clock):
    day = clock.now - dt.timedelta(days=1)
    store_sent(console, council, "07700900001", "delivered", day)
    store_sent(console, council, "07700900002", "permanent-failure", day)
    store_sent(console, council, "07700900001", "delivered", clock.now)
    client = signed(console, council, "viewer", "cy")
    page = client.get("/console/reports/?recipient=07700+900001").text
    rows = page[page.index('data-testid="report-rows"'):]
    assert rows.count("+447700900001") == 2 and "+447700900002" not in rows
    everything = client.get("/console/reports/").text
    assert 'class="hysbys-chart"' in everything
    by_day = everything[everything.index('data-testid="delivery-by-day"'):]
    assert "50%" in by_day and "100%" in by_day
    csv_text = client.get("/console/reports/export.csv").get_data(as_text=True)
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("Crëwyd,Sianel,Derbynnydd")
    assert len(lines) == 4 and "+447700900002" in csv_text and "Helo" not in csv_text


def test_a_sender_previews_then_sends_by_hand_and_a_bad_number_blocks_the_send(console,
                                                                               council):
    tid = sms_template(console, council, en="Hi ((name))", cy="Shwmae ((name))")
    sender = signed(console, council, "sender")
    data = {"template": tid, "recipients": "07700900001\nnonsense", "language": "cy",
            "personalisation": "name = Siân", "preview": "1"}
    r = post(console, sender, "/console/send/", data, form_page="/console/send/")
    assert r.status_code == 200 and "Shwmae Siân" in r.text and "Not a phone number" in r.text
    assert "send-now" not in r.text
    data["recipients"] = "07700900001\n07700 900002"
    r = post(console, sender, "/console/send/", data, form_page="/console/send/")
    assert "send-now" in r.text and "UCS-2" in r.text          # the circumflex of Siân
    r = post(console, sender, "/console/send/", {**data, "confirm": "send"},
             form_page="/console/send/")
    assert r.status_code == 200 and 'data-testid="sent"' in r.text
    with console.db.read() as s:
        sent = s.scalars(sa.select(Notification).where(
            Notification.tenant_id == council.id)).all()
    assert sorted(n.recipient for n in sent) == ["+447700900001", "+447700900002"]
    assert {n.body for n in sent} == {"Shwmae Siân"}
