"""The staff inbox on inbound (SQLite): conversations per citizen per tenant, every message in
and out, answered through notify in the citizen's language, assigned, closed and reopened."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from inbound_support import (
    CITIZEN,
    REPLY_TEMPLATE,
    apply,
    bearer,
    events_of,
    tenant_with_key,
    twilio_form,
)

from services.inbound import retention
from services.inbound.models import ConversationMessage, ConversationThread
from shared import events, pii

OTHER_CITIZEN = "+447700900124"


@pytest.fixture
def council(inbound):
    return tenant_with_key(inbound)


@pytest.fixture
def auth(council):
    return bearer(council[1])


def conversations(client, auth, query: str = "") -> list[dict]:
    resp = client.get(f"/api/conversations{query}", headers=auth)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["conversations"]


def the_conversation(client, auth) -> dict:
    [summary] = conversations(client, auth)
    resp = client.get(f"/api/conversations/{summary['id']}", headers=auth)
    assert resp.status_code == 200
    return resp.get_json()


def sent(inbound, tenant_id: str, notification_id, to: str = CITIZEN, **extra) -> None:
    """notify reports a text sent to ``to`` (off the wire, through the service's queue handler)."""
    apply(inbound, events.make("notification.sent", tenant_id, notification_id=str(
        notification_id), status="sent", channel="sms", provider="twilio", recipient=to, **extra))


# -- what a conversation holds --------------------------------------------------------

def test_a_question_opens_a_conversation_holding_the_reply_and_its_answer_newest_first(
        client, auth, post_twilio):
    assert conversations(client, auth) == []
    post_twilio(twilio_form("Oes modd cael bin ailgylchu newydd?"))

    body = the_conversation(client, auth)
    assert (body["phone"], body["status"], body["assigned_to"]) == (CITIZEN, "open", None)
    assert body["opened_at"] and body["closed_at"] is None and body["message_count"] == 2
    answer, reply = body["messages"]
    assert (reply["direction"], reply["kind"], reply["body"], reply["action"]) == (
        "in", "reply", "Oes modd cael bin ailgylchu newydd?", "question")
    assert reply["service_request"].startswith("HYS-")
    assert (answer["direction"], answer["kind"], answer["status"]) == ("out", "auto_reply",
                                                                       "requested")
    assert reply["service_request"] in answer["body"]
    assert body["last_message"]["id"] == answer["id"]


def test_a_reply_is_shown_beside_the_reminder_it_answered(client, auth, council, inbound,
                                                          post_twilio):
    tenant = council[0]
    appointment, notification = str(uuid.uuid4()), str(uuid.uuid4())
    sent(inbound, tenant.id, notification, appointment_id=appointment)
    post_twilio(twilio_form("Can I bring my daughter with me?"))

    reply, reminder = [m for m in the_conversation(client, auth)["messages"]
                       if m["kind"] in ("reply", "notification")]
    assert (reminder["direction"], reminder["notification_id"], reminder["appointment_id"],
            reminder["body"]) == ("out", notification, appointment, None)
    assert reply["appointment_id"] == appointment


def test_a_reply_the_platform_answers_itself_is_kept_but_opens_nothing(client, auth,
                                                                       post_twilio):
    post_twilio(twilio_form("CYMRAEG"))
    body = the_conversation(client, auth)
    assert body["status"] == "closed" and body["opened_at"] is None
    assert [m["kind"] for m in body["messages"]] == ["auto_reply", "reply"]
    assert body["messages"][1]["action"] == "language_cy"


def test_texts_notify_sends_join_the_conversation_and_answers_become_sent(
        client, auth, council, inbound, post_twilio):
    tenant = council[0]
    post_twilio(twilio_form("Pryd mae'r casgliad gwastraff gardd yn ailddechrau?"))
    answer = the_conversation(client, auth)["messages"][0]
    campaign, reminder = str(uuid.uuid4()), str(uuid.uuid4())
    sent(inbound, tenant.id, answer["notification_id"])
    sent(inbound, tenant.id, reminder, campaign_id=campaign)
    sent(inbound, tenant.id, uuid.uuid4(), to=OTHER_CITIZEN)     # no conversation: not kept
    sent(inbound, tenant.id, reminder, campaign_id=campaign)     # a replay: once

    body = the_conversation(client, auth)
    by_id = {m["notification_id"]: m for m in body["messages"] if m["notification_id"]}
    assert by_id[answer["notification_id"]]["status"] == "sent"
    assert (by_id[reminder]["kind"], by_id[reminder]["campaign_id"]) == ("notification", campaign)
    assert body["message_count"] == 3
    assert body["messages"][0]["notification_id"] == reminder, "the newest first"


def test_closing_a_request_texts_the_citizen_and_the_text_joins_the_conversation(
        client, auth, post_twilio):
    post_twilio(twilio_form("Mae'r bin gwyrdd wedi torri"))
    reference = the_conversation(client, auth)["messages"][1]["service_request"]
    client.patch(f"/api/service-requests/{reference}", headers=auth,
                 json={"status": "closed", "status_notes": "bin newydd ddydd Llun"})
    update = the_conversation(client, auth)["messages"][0]
    assert (update["kind"], update["service_request"]) == ("status_update", reference)
    assert "bin newydd ddydd Llun" in update["body"]


# -- answering -------------------------------------------------------------------------

def test_a_staff_answer_is_a_notification_asked_of_notify_in_the_citizen_s_language(
        client, auth, council, inbound, post_twilio):
    post_twilio(twilio_form("ENGLISH"))                 # this citizen reads English
    post_twilio(twilio_form("Is the tip open on Sunday?"))
    conversation = the_conversation(client, auth)
    assert conversation["language"] == "en"

    resp = client.post(f"/api/conversations/{conversation['id']}/messages", headers=auth,
                       json={"body_cy": "Ydy, 9 tan 4.", "body_en": "Yes, 9 till 4.",
                             "author": "dai@penfro.gov.uk"})
    assert resp.status_code == 201, resp.get_json()
    message = resp.get_json()
    assert (message["kind"], message["body"], message["language"], message["author"],
            message["status"]) == ("staff_answer", "Yes, 9 till 4.", "en", "dai@penfro.gov.uk",
                                   "requested")
    asked = [e for e in events_of(inbound, "notification.requested")
             if str(e.data["notification_id"]) == message["notification_id"]]
    [event] = asked
    assert event.data["recipient"] == CITIZEN and event.data["language"] == "en"
    assert str(event.data["template_id"]) == REPLY_TEMPLATE and event.data["urgent"] is False
    assert event.data["personalisation"]["reply_en"] == "Yes, 9 till 4."
    assert the_conversation(client, auth)["messages"][0]["id"] == message["id"]


def test_a_welsh_reader_is_answered_in_welsh(client, auth, inbound, post_twilio):
    post_twilio(twilio_form("CYMRAEG"))
    post_twilio(twilio_form("Ydy'r domen ar agor ddydd Sul?"))
    conversation = the_conversation(client, auth)
    resp = client.post(f"/api/conversations/{conversation['id']}/messages", headers=auth,
                       json={"body": "Ydy, 9 tan 4."})
    assert resp.status_code == 201
    event = events_of(inbound, "notification.requested")[-1]
    assert event.data["language"] == "cy"
    assert event.data["personalisation"]["reply_cy"] == "Ydy, 9 tan 4."
    assert resp.get_json()["author"].startswith("key:")


def test_an_answer_without_the_citizen_s_language_is_a_400_naming_the_field(
        client, auth, inbound, post_twilio):
    post_twilio(twilio_form("ENGLISH"))
    post_twilio(twilio_form("Is the tip open on Sunday?"))
    conversation = the_conversation(client, auth)
    before = len(events_of(inbound, "notification.requested"))
    resp = client.post(f"/api/conversations/{conversation['id']}/messages", headers=auth,
                       json={"body_cy": "Ydy, 9 tan 4."})
    assert resp.status_code == 400
    assert "body_en" in resp.get_json()["errors"][0]["message"]
    assert len(events_of(inbound, "notification.requested")) == before, "nothing sent"


@pytest.mark.parametrize("body, words", [
    ({}, "body"), ({"body": ""}, "body"), ({"body": "x" * 919}, "body"),
    ({"body": "Yes", "body_en": "Yes"}, "body"), ({"text": "Yes"}, "text"),
    ({"body": 7}, "body"),
])
def test_a_bad_answer_is_a_400_naming_the_field(client, auth, post_twilio, body, words):
    post_twilio(twilio_form("Is the tip open on Sunday?"))
    conversation = the_conversation(client, auth)
    resp = client.post(f"/api/conversations/{conversation['id']}/messages", headers=auth,
                       json=body)
    assert resp.status_code == 400
    assert words in resp.get_json()["errors"][0]["message"]


# -- assign, close, reopen, filter ------------------------------------------------------

def test_closed_then_a_new_question_reopens_the_same_conversation(client, auth, post_twilio):
    post_twilio(twilio_form("Is the tip open on Sunday?"))
    ident = the_conversation(client, auth)["id"]
    resp = client.patch(f"/api/conversations/{ident}", headers=auth, json={"status": "closed"})
    assert resp.status_code == 200 and resp.get_json()["status"] == "closed"
    assert resp.get_json()["closed_at"]
    post_twilio(twilio_form("CYMRAEG"))          # answered by the platform: stays closed
    assert the_conversation(client, auth)["status"] == "closed"

    post_twilio(twilio_form("And on bank holidays?"))
    again = the_conversation(client, auth)
    assert (again["id"], again["status"], again["closed_at"]) == (ident, "open", None)
    assert again["message_count"] == 6


def test_a_conversation_is_assigned_reopened_and_unassigned(client, auth, post_twilio):
    post_twilio(twilio_form("Is the tip open on Sunday?"))
    ident = the_conversation(client, auth)["id"]
    body = client.patch(f"/api/conversations/{ident}", headers=auth,
                        json={"assigned_to": "Dai <dai@penfro.gov.uk>", "status": "closed"}
                        ).get_json()
    assert (body["assigned_to"], body["status"]) == ("Dai <dai@penfro.gov.uk>", "closed")
    body = client.patch(f"/api/conversations/{ident}", headers=auth,
                        json={"assigned_to": None, "status": "open"}).get_json()
    assert (body["assigned_to"], body["status"]) == (None, "open")


def test_conversations_are_filtered_and_paged_newest_first(client, auth, council, inbound,
                                                           post_twilio):
    post_twilio(twilio_form("Is the tip open on Sunday?"))
    post_twilio(twilio_form("CYMRAEG", from_=OTHER_CITIZEN))
    third = "+447700900125"
    post_twilio(twilio_form("Ble mae'r bagiau glas?", from_=third))
    everyone = conversations(client, auth)
    assert [c["phone"] for c in everyone] == [third, OTHER_CITIZEN, CITIZEN]
    client.patch(f"/api/conversations/{everyone[2]['id']}", headers=auth,
                 json={"assigned_to": "dai@penfro.gov.uk"})

    def phones(query):
        return [c["phone"] for c in conversations(client, auth, query)]
    assert phones("?status=open") == [third, CITIZEN]
    assert phones("?status=closed") == [OTHER_CITIZEN]
    assert phones("?assigned_to=dai@penfro.gov.uk") == [CITIZEN]
    assert phones("?assigned=false") == [third, OTHER_CITIZEN]
    assert phones("?assigned=true") == [CITIZEN]
    assert phones("?keyword=question") == [third, CITIZEN]
    assert phones("?keyword=language_cy") == [OTHER_CITIZEN]
    with inbound.runtime.db.transaction() as session:     # an old conversation
        session.execute(sa.update(ConversationThread).where(
            ConversationThread.phone_hash == pii.lookup_hash(session, CITIZEN))
                        .values(last_message_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC)))
    assert phones("?until=2026-02-01T00:00:00Z") == [CITIZEN]
    assert CITIZEN not in phones("?since=2026-02-01T00:00:00Z")

    page = client.get("/api/conversations?page_size=2", headers=auth).get_json()
    assert [c["phone"] for c in page["conversations"]] == [third, OTHER_CITIZEN]
    rest = client.get(page["links"]["next"], headers=auth).get_json()
    assert [c["phone"] for c in rest["conversations"]] == [CITIZEN]
    assert rest["links"] == {}


@pytest.mark.parametrize("query, words", [
    ("?status=pending", "status"), ("?page_size=0", "page_size"), ("?since=yesterday", "since"),
    ("?assigned=maybe", "assigned"), ("?older_than=7", "older_than"),
])
def test_a_bad_filter_is_a_400_naming_it(client, auth, query, words):
    resp = client.get(f"/api/conversations{query}", headers=auth)
    assert resp.status_code == 400
    assert words in resp.get_json()["errors"][0]["message"]


@pytest.mark.parametrize("body, words", [
    ({"status": "done"}, "status"), ({"assigned_to": ""}, "assigned_to"),
    ({"assigned_to": "x" * 321}, "assigned_to"), ({"owner": "dai"}, "owner"), ({}, "assigned_to"),
])
def test_a_bad_change_is_a_400_naming_the_field(client, auth, post_twilio, body, words):
    post_twilio(twilio_form("Is the tip open on Sunday?"))
    ident = the_conversation(client, auth)["id"]
    resp = client.patch(f"/api/conversations/{ident}", headers=auth, json=body)
    assert resp.status_code == 400
    assert words in resp.get_json()["errors"][0]["message"]


# -- tenancy -----------------------------------------------------------------------------

def test_another_tenant_s_conversation_is_a_404_identical_to_an_unknown_one(
        client, auth, inbound, post_twilio):
    post_twilio(twilio_form("Is the tip open on Sunday?"))
    ident = the_conversation(client, auth)["id"]
    _, other_key = tenant_with_key(inbound, slug="powys", number="+447700900501")
    other = bearer(other_key)
    for method, path, body in (("get", "", None), ("patch", "", {"status": "closed"}),
                               ("post", "/messages", {"body": "Helo"})):
        theirs = getattr(client, method)(f"/api/conversations/{ident}{path}", headers=other,
                                         json=body)
        unknown = getattr(client, method)(f"/api/conversations/{uuid.uuid4()}{path}",
                                          headers=other, json=body)
        garbage = getattr(client, method)(f"/api/conversations/not-an-id{path}",
                                          headers=other, json=body)
        assert theirs.status_code == unknown.status_code == garbage.status_code == 404
        assert theirs.data == unknown.data == garbage.data
    assert conversations(client, other) == []
    assert events_of(inbound, "notification.requested")[-1].data["personalisation"][
        "reply_cy"] != "Helo", "nothing sent for the other tenant"
    assert the_conversation(client, auth)["status"] == "open"


def test_conversations_need_the_tenant_s_token(client):
    assert client.get("/api/conversations").status_code in (401, 403)


# -- retention ---------------------------------------------------------------------------

def test_a_conversation_goes_whole_once_its_last_message_is_past_retention(
        inbound, council, client, auth, post_twilio):
    post_twilio(twilio_form("Is the tip open on Sunday?"))
    post_twilio(twilio_form("Ble mae'r bagiau glas?", from_=OTHER_CITIZEN))
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    with inbound.runtime.db.transaction() as session:
        session.execute(sa.update(ConversationThread).where(
            ConversationThread.phone_hash == pii.lookup_hash(session, CITIZEN))
                        .values(last_message_at=old))
    retention.run_once(inbound.runtime.db)
    assert [c["phone"] for c in conversations(client, auth)] == [OTHER_CITIZEN]
    with inbound.runtime.db.read() as session:
        left = session.scalars(sa.select(ConversationMessage.conversation_id).distinct()).all()
    assert left == [conversations(client, auth)[0]["id"]]


def test_an_old_message_goes_while_its_conversation_goes_on(inbound, client, auth, post_twilio):
    post_twilio(twilio_form("Is the tip open on Sunday?"))
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    with inbound.runtime.db.transaction() as session:
        session.execute(sa.update(ConversationMessage).values(at=old))
    post_twilio(twilio_form("And on bank holidays?"))
    retention.run_once(inbound.runtime.db)
    body = the_conversation(client, auth)
    assert [m["body"] for m in body["messages"] if m["kind"] == "reply"] == [
        "And on bank holidays?"]


def test_help_answered_at_once_by_twilio_is_in_the_conversation(client, auth, post_twilio):
    resp = post_twilio(twilio_form("HELP"))
    assert b"STOP" in resp.data
    answer, reply = the_conversation(client, auth)["messages"]
    assert (reply["kind"], reply["keyword"]) == ("reply", "help")
    assert (answer["kind"], answer["status"], answer["notification_id"]) == ("auto_reply", "sent",
                                                                             None)
    assert "STOP" in answer["body"] and answer["body"] in resp.data.decode()


def test_an_appointment_reply_is_linked_to_the_appointment_and_opens_nothing(
        client, auth, council, inbound, scheduler, post_twilio):
    appointment = scheduler.book(CITIZEN, "RENAL-1001", "4821")
    sent(inbound, council[0].id, uuid.uuid4(), appointment_id=appointment,
         appointment_reference="RENAL-1001", reply_code="4821")
    post_twilio(twilio_form("CANSLO 4821"))
    body = the_conversation(client, auth)
    [reply] = [m for m in body["messages"] if m["kind"] == "reply"]
    assert (reply["action"], reply["appointment_id"], reply["appointment_reference"]) == (
        "cancel", appointment, "RENAL-1001")
    assert body["status"] == "closed"
