"""GOV.UK Notify's send options through the official client, honoured as Notify honours
them: ``sms_sender_id`` picks the tenant's sender (the From Twilio receives),
``email_reply_to_id`` its reply-to address and ``one_click_unsubscribe_url`` the
List-Unsubscribe header (what the SMTP relay receives); an id that is not the tenant's
is the 400 Notify gives; a v2 send at 21:30 goes at once.

Runs embedded (memory broker + SQLite) and on RabbitMQ + PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import requests
from notifications_python_client.authentication import create_jwt_token
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

from services.embedded import Platform
from services.notify.providers.smtp import SmtpFactory
from services.notify.providers.twilio import TwilioFactory
from tests.conftest import eventually
from tests.fakes.smtp_server import FakeRelay
from tests.fakes.twilio_server import FakeTwilio

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
SMS = {"name": "Cod", "type": "sms",
       "body": {"cy": "Eich cod yw ((code)).", "en": "Your code is ((code))."}}
EMAIL = {"name": "Newyddion", "type": "email",
         "body": {"cy": "Mae'r biniau'n newid ddydd Llun.", "en": "Bins change on Monday."},
         "subject": {"cy": "Biniau", "en": "Bins"}}
SENDER_ID = str(uuid.uuid4())
REPLY_TO_ID = str(uuid.uuid4())
HALF_NINE = dt.datetime(2026, 1, 14, 21, 30, tzinfo=dt.UTC)


@pytest.fixture
def fakes():
    with FakeTwilio("AC" + "7" * 32, "penfro-twilio-auth-token",
                    from_number="+447700900400",
                    other_senders=("+447700900401", "SirBenfro")) as twilio, FakeRelay() as relay:
        yield twilio, relay


@pytest.fixture
def council(stack_settings, fakes):
    twilio, relay = fakes
    settings = stack_settings.with_(allowed_providers=("simulator", "twilio", "smtp"))
    twilio.status_callback = settings.public_url("notify") + "/callbacks/twilio/status"
    platform = Platform(settings, providers={
        "twilio": TwilioFactory(base_url=twilio.url, timeout=5), "smtp": SmtpFactory(timeout=5)})
    platform.migrate()
    platform.start()
    base = platform.urls()["notify"]
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    created = requests.post(f"{base}/admin/tenants", headers=admin, timeout=5,
                            json={"name": "Cyngor Sir Penfro", "slug": "penfro"}).json()
    patched = requests.patch(f"{base}/admin/tenants/{created['id']}", headers=admin, timeout=5,
                             json={
        "providers": ["twilio", "smtp"],
        "provider_credentials": {"twilio": twilio.credentials(), "smtp": relay.credentials()},
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "sms_senders": [{"sms_sender": "SirBenfro", "is_default": True},
                        {"id": SENDER_ID, "sms_sender": "07700 900401"}],
        "email_reply_to": [{"email_address": "cyswllt@sir-benfro.example", "is_default": True},
                           {"id": REPLY_TO_ID, "email_address": "biniau@sir-benfro.example"}]})
    assert patched.status_code == 200, patched.text
    shown = requests.get(f"{base}/admin/tenants/{created['id']}", headers=admin, timeout=5).json()
    assert [s["id"] for s in shown["config"]["sms_senders"]][1] == SENDER_ID
    assert shown["config"]["sms_senders"][1]["sms_sender"] == "+447700900401"
    jwt = create_jwt_token(created["api_key"][-36:], created["id"])
    ids = {}
    for kind, body in (("sms", SMS), ("email", EMAIL)):
        r = requests.post(f"{base}/api/templates", json=body, timeout=5,
                          headers={"Authorization": f"Bearer {jwt}"})
        ids[kind] = r.json()["id"]
    platform.notify.clock = lambda: HALF_NINE
    yield NotificationsAPIClient(created["api_key"], base_url=base), ids, created["id"]
    platform.stop()


def test_sms_sender_id_picks_the_tenants_sender_and_the_default_is_used_without_it(
        council, fakes):
    client, ids, _ = council
    twilio, _ = fakes
    chosen = client.send_sms_notification("07700 900123", ids["sms"], {"code": "4829"},
                                          sms_sender_id=SENDER_ID)
    default = client.send_sms_notification("07700 900124", ids["sms"], {"code": "5930"})
    assert chosen["content"]["from_number"] == "+447700900401"
    assert default["content"]["from_number"] == "SirBenfro"
    got = eventually(lambda: len(twilio.messages) == 2 and list(twilio.messages),
                     message="both texts reached Twilio at 21:30 (not deferred)")
    assert {m.to: m.from_ for m in got} == {"+447700900123": "+447700900401",
                                           "+447700900124": "SirBenfro"}
    assert twilio.problems == []


def test_email_reply_to_id_and_the_unsubscribe_link_reach_the_relay(council, fakes):
    client, ids, _ = council
    _, relay = fakes
    link = "https://sir-benfro.example/dad-danysgrifio?t=abc123"
    sent = client.send_email_notification("preswylydd@example.cymru", ids["email"],
                                          email_reply_to_id=REPLY_TO_ID,
                                          one_click_unsubscribe_url=link)
    assert sent["content"]["one_click_unsubscribe_url"] == link
    client.send_email_notification("arall@example.cymru", ids["email"])
    mails = eventually(lambda: len(relay.received) == 2 and list(relay.received),
                       message="both emails reached the relay")
    by_to = {m["To"]: m for m in mails}
    first, second = by_to["preswylydd@example.cymru"], by_to["arall@example.cymru"]
    assert first["Reply-To"] == "biniau@sir-benfro.example"
    assert (first["List-Unsubscribe"], first["List-Unsubscribe-Post"]) == \
        (f"<{link}>", "List-Unsubscribe=One-Click")
    assert second["Reply-To"] == "cyswllt@sir-benfro.example"
    assert second["List-Unsubscribe"] is None


@pytest.mark.parametrize("option,send", [
    ("sms_sender_id", lambda c, ids, other: c.send_sms_notification(
        "07700 900123", ids["sms"], {"code": "1"}, sms_sender_id=other)),
    ("email_reply_to_id", lambda c, ids, other: c.send_email_notification(
        "preswylydd@example.cymru", ids["email"], email_reply_to_id=other)),
])
def test_an_id_that_is_not_the_tenants_is_notifys_400(council, option, send):
    client, ids, tenant_id = council
    other = str(uuid.uuid4())
    with pytest.raises(HTTPError) as caught:
        send(client, ids, other)
    assert caught.value.status_code == 400
    assert caught.value.message == [{
        "error": "BadRequestError",
        "message": f"{option} {other} does not exist in database for service id {tenant_id}"}]
