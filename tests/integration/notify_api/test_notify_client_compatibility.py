"""The official ``notifications-python-client``, unchanged but for its base URL, against Hysbys.

One test per client method (docs/notify-api.md's compatibility matrix cites them),
each run on the embedded stack and on RabbitMQ + PostgreSQL (``platform``).
"""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
import requests
from notifications_python_client.authentication import create_jwt_token
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

from shared import events, outbox
from tests.conftest import eventually

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SMS = {"name": "Bin day", "type": "sms",
       "body": {"cy": "Helo ((name)), biniau ((bin type)) yfory.",
                "en": "Hello ((name)), ((bin type)) bins tomorrow."}}
EMAIL = {"name": "Clinic", "type": "email",
         "body": {"cy": "Annwyl ((name)), mae eich apwyntiad ddydd Iau.",
                  "en": "Dear ((name)), your appointment is on Thursday."},
         "subject": {"cy": "Eich apwyntiad", "en": "Your appointment"}}
VALUES = {"name": "Siân", "bin_type": "du"}
REPLY_TO_ID = str(uuid.uuid4())
# Every field GOV.UK Notify's GET /v2/notifications/{id} answers with
NOTIFICATION_KEYS = {"id", "reference", "email_address", "phone_number", "line_1", "line_2",
                     "line_3", "line_4", "line_5", "line_6", "postcode", "type", "status",
                     "template", "body", "subject", "created_at", "created_by_name", "sent_at",
                     "completed_at", "scheduled_for", "postage"}
TEMPLATE_KEYS = {"id", "name", "type", "created_at", "updated_at", "created_by", "version",
                 "body", "subject", "personalisation", "postage", "letter_contact_block"}


class Council:
    """A tenant on the running platform, with the official client for each of its keys."""

    def __init__(self, platform, slug: str):
        self.url = platform.urls()["notify"]
        admin = {"Authorization": f"Bearer {platform.settings.admin_token}"}
        created = requests.post(f"{self.url}/admin/tenants", headers=admin,
                                json={"name": slug.title(), "slug": slug}).json()
        r = requests.patch(f"{self.url}/admin/tenants/{created['id']}", headers=admin,
                           json={"quiet_hours": None, "inbound_numbers": ["07700 900999"],
                                 "email_reply_to": [{"id": REPLY_TO_ID,
                                                     "email_address": "clinig@example.cymru"}]})
        assert r.status_code == 200, r.text
        self.id = created["id"]
        self.api_key = created["api_key"]
        self.client = NotificationsAPIClient(created["api_key"], base_url=self.url)
        self.test_client = NotificationsAPIClient(created["test_api_key"], base_url=self.url)

    def native(self, method: str, path: str, **kw) -> requests.Response:
        token = create_jwt_token(self.api_key[-36:], self.api_key[-73:-37])
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, **kw)

    def template(self, body: dict) -> str:
        r = self.native("POST", "/api/templates", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]


@pytest.fixture
def council(platform) -> Council:
    return Council(platform, "pembrokeshire")


def delivered(client, notification_id: str) -> dict:
    return eventually(lambda: (n := client.get_notification_by_id(notification_id))
                      ["status"] == "delivered" and n, message="delivered")


def test_send_sms_notification(council):
    tid = council.template(SMS)
    sent = council.client.send_sms_notification("07700 900111", tid, personalisation=VALUES,
                                                reference="bins-1")
    assert set(sent) >= {"id", "reference", "content", "uri", "template", "scheduled_for"}
    assert sent["reference"] == "bins-1" and sent["scheduled_for"] is None
    assert sent["content"]["body"] == ("Helo Siân, biniau du yfory.\n\n"
                                       "Hello Siân, du bins tomorrow.")
    assert set(sent["content"]) >= {"body", "from_number"}
    assert sent["uri"] == f"{council.url}/v2/notifications/{sent['id']}"
    assert sent["template"] == {"id": tid, "version": 1,
                                "uri": f"{council.url}/v2/template/{tid}/version/1"}
    assert delivered(council.client, sent["id"])["phone_number"] == "+447700900111"


def test_send_email_notification(council):
    tid = council.template(EMAIL)
    sent = council.client.send_email_notification(
        "Dai@Example.cymru", tid, personalisation={"name": "Dai"}, reference="clinic-1",
        email_reply_to_id=REPLY_TO_ID,       # one of the council's (docs/notify-api.md)
        one_click_unsubscribe_url="https://example.cymru/unsubscribe")
    assert sent["content"]["subject"] == "Eich apwyntiad / Your appointment"
    assert sent["content"]["body"].startswith("Annwyl Dai")
    assert set(sent["content"]) >= {"body", "subject", "from_email"}
    n = delivered(council.client, sent["id"])
    assert (n["type"], n["email_address"], n["phone_number"]) == \
        ("email", "dai@example.cymru", None)


def test_get_notification_by_id(council):
    tid = council.template(SMS)
    sent = council.client.send_sms_notification("07700900222", tid, personalisation=VALUES)
    n = delivered(council.client, sent["id"])
    assert set(n) >= NOTIFICATION_KEYS
    assert (n["id"], n["type"], n["reference"], n["scheduled_for"]) == \
        (sent["id"], "sms", None, None)
    for stamp in ("created_at", "sent_at", "completed_at"):
        assert TIMESTAMP.match(n[stamp]), (stamp, n[stamp])
    assert n["template"]["uri"] == f"{council.url}/v2/template/{tid}/version/1"
    with pytest.raises(HTTPError) as err:
        council.client.get_notification_by_id(str(uuid.uuid4()))
    assert err.value.status_code == 404
    assert err.value.message == [{"error": "NoResultFound", "message": "No result found"}]
    with pytest.raises(HTTPError) as err:
        council.client.get_notification_by_id("not-a-uuid")
    assert err.value.status_code == 400
    assert err.value.message[0]["error"] == "ValidationError"


def test_get_all_notifications(council):
    sms, email = council.template(SMS), council.template(EMAIL)
    a = council.client.send_sms_notification("07700900111", sms, VALUES, reference="a")
    failed = council.client.send_sms_notification("07700900002", sms, VALUES, reference="b")
    mail = council.client.send_email_notification("a@b.cymru", email, {"name": "Dai"},
                                                  reference="a")
    delivered(council.client, a["id"])
    eventually(lambda: council.client.get_notification_by_id(failed["id"])["status"]
               == "permanent-failure", message="permanent failure")
    every = council.client.get_all_notifications()
    assert [n["id"] for n in every["notifications"]] == [mail["id"], failed["id"], a["id"]]
    assert every["links"]["current"].startswith(f"{council.url}/v2/notifications")

    def ids(**filters):
        return [n["id"] for n in council.client.get_all_notifications(**filters)["notifications"]]
    assert ids(template_type="email") == [mail["id"]]
    assert ids(status="failed") == [failed["id"]]
    assert ids(status="delivered", template_type="sms") == [a["id"]]
    assert ids(reference="a") == [mail["id"], a["id"]]
    assert ids(older_than=failed["id"]) == [a["id"]]
    assert ids(older_than=a["id"]) == []
    assert council.test_client.get_all_notifications()["notifications"] == [], \
        "as on Notify, a key lists only what keys of its own type sent"


def test_get_all_notifications_iterator(council):
    tid = council.template(SMS)
    rows = "".join(f"07700900{n:03d},r{n},glas\n" for n in range(300))
    r = council.native("POST", f"/api/bulk?template_id={tid}",
                       data=("phone_number,name,bin type\n" + rows).encode(),
                       headers={"Content-Type": "text/csv"})
    assert r.status_code == 201 and r.json()["accepted"] == 300, r.text
    first_page = council.client.get_all_notifications()
    assert len(first_page["notifications"]) == 250 and "older_than=" in first_page["links"]["next"]
    seen = [n["id"] for n in council.client.get_all_notifications_iterator()]
    assert len(seen) == 300 and len(set(seen)) == 300
    assert seen[:250] == [n["id"] for n in first_page["notifications"]]


def test_get_template(council):
    tid = council.template(SMS)
    t = council.client.get_template(tid)
    assert set(t) >= TEMPLATE_KEYS
    assert (t["id"], t["type"], t["version"], t["subject"]) == (tid, "sms", 1, None)
    assert t["body"] == SMS["body"]["cy"] + "\n\n" + SMS["body"]["en"], "Welsh first"
    assert t["personalisation"] == {"name": {"required": True}, "bin type": {"required": True}}
    assert TIMESTAMP.match(t["created_at"])
    with pytest.raises(HTTPError) as err:
        council.client.get_template(str(uuid.uuid4()))
    assert err.value.status_code == 404


def test_get_template_version(council):
    tid = council.template(SMS)
    sent = council.client.send_sms_notification("07700900111", tid, personalisation=VALUES)
    r = council.native("PATCH", f"/api/templates/{tid}",
                       json={"body": {"cy": "Newydd ((name))", "en": "New ((name))"}})
    assert r.status_code == 200 and r.json()["version"] == 2
    old = council.client.get_template_version(tid, 1)
    assert old["version"] == 1 and "biniau ((bin type))" in old["body"]
    assert council.client.get_template_version(tid, 2)["body"] == "Newydd ((name))\n\nNew ((name))"
    n = council.client.get_notification_by_id(sent["id"])
    assert n["template"]["version"] == 1, "a sent notification keeps the version it used"
    with pytest.raises(HTTPError) as err:
        council.client.get_template_version(tid, 3)
    assert err.value.status_code == 404


def test_get_all_templates(council):
    sms, email = council.template(SMS), council.template(EMAIL)
    every = council.client.get_all_templates()["templates"]
    assert {sms, email} <= {t["id"] for t in every}
    assert all(set(t) >= TEMPLATE_KEYS for t in every)
    assert [t["id"] for t in council.client.get_all_templates("email")["templates"]] == [email]
    assert sms in [t["id"] for t in council.client.get_all_templates(template_type="sms")
                   ["templates"]]


def test_post_template_preview(council):
    tid = council.template(SMS)
    p = council.client.post_template_preview(tid, personalisation={"Name": "Ŵyn", "BIN-TYPE": "du"})
    assert set(p) >= {"id", "type", "version", "body", "subject", "html"}
    assert p["body"] == "Helo Ŵyn, biniau du yfory.\n\nHello Ŵyn, du bins tomorrow."
    assert (p["encoding"], p["fragment_count"]) == ("UCS-2", 1), "ŵ is kept, and costs UCS-2"
    with pytest.raises(HTTPError) as err:
        council.client.post_template_preview(tid, personalisation={"name": "Dai"})
    assert err.value.status_code == 400
    assert err.value.message == [{"error": "BadRequestError",
                                  "message": "Missing personalisation: bin type"}]


def receive(platform, council, count: int) -> list[str]:
    """Replies as the inbound service reports them: ``inbound.message.received`` events,
    published through notify's outbox and consumed by its worker."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with platform.notify.runtime.db.transaction() as session:
        for n, message_id in enumerate(ids):
            outbox.add(session, events.make(
                "inbound.message.received", council.id, None, message_id=message_id,
                provider_reference=f"SM{n:032d}", from_number="+447700900111",
                to_number="+447700900999", body=f"MISSED {n}",
                received_at=start + dt.timedelta(seconds=n)))
    platform.notify.runtime.relay.nudge.set()
    return ids


def test_get_received_texts(platform, council):
    [only] = receive(platform, council, 1)
    got = eventually(lambda: council.client.get_received_texts()["received_text_messages"],
                     message="reply stored")
    assert got == [{"id": only, "created_at": got[0]["created_at"], "service_id": council.id,
                    "notify_number": "+447700900999", "user_number": "+447700900111",
                    "content": "MISSED 0"}]
    assert TIMESTAMP.match(got[0]["created_at"])
    assert council.client.get_received_texts(older_than=only)["received_text_messages"] == []


def test_get_received_texts_iterator(platform, council):
    ids = receive(platform, council, 260)
    eventually(lambda: len(list(council.client.get_received_texts_iterator())) == 260,
               timeout=30, message="all replies stored")
    seen = [t["id"] for t in council.client.get_received_texts_iterator()]
    assert seen == list(reversed(ids)), "newest first, across pages, each once"


def test_errors_reach_the_client_as_notify_sends_them(platform, council):
    tid = council.template(SMS)
    with pytest.raises(HTTPError) as err:
        council.client.send_sms_notification("07700 900ABC", tid, personalisation=VALUES)
    assert err.value.status_code == 400
    assert err.value.message[0]["error"] == "ValidationError"
    assert err.value.message[0]["message"].startswith("phone_number Not a valid phone number")
    stranger = NotificationsAPIClient(f"x-{council.id}-{uuid.uuid4()}", base_url=council.url)
    with pytest.raises(HTTPError) as err:
        stranger.get_all_notifications()
    assert err.value.status_code == 403
