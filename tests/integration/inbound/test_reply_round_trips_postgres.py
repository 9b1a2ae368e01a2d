"""One reply's statements on PostgreSQL, and the conversation upsert as PostgreSQL runs it.

Before issue 16's inbound work (4 December 2026) a question took 24 statements: the
tenant's keywords, wording and service types read on every reply (and the service types
again for the request), the retry check on its own, the conversation found, made and
found again, and two UPDATEs of the thread.  Now: the tenant's number, one query for
the retry check and the configuration's stamp (services/inbound/reply_config.py), the
conversation context and the language preference; then the reference, the message
with it, the request and its history, the outbox rows, the thread upsert, the messages.
A count, not a time.
"""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from services.inbound.models import ConversationThread, InboundMessage
from tests.fakes.statements import counted
from tests.unit.inbound.inbound_support import (
    make_settings,
    seed_tenant,
    start,
    twilio_form,
    twilio_signature,
)

QUESTION_STATEMENTS = 11
RETRY_STATEMENTS = 2        # the tenant's number; the retry check


@pytest.fixture
def inbound(tmp_path, pg_url):
    service = start(make_settings(tmp_path, database_url=pg_url))
    seed_tenant(service)
    yield service
    service.runtime.db.dispose()


@pytest.fixture
def post(inbound):
    client = inbound.create_app().test_client()
    url = inbound.runtime.settings.public_url("inbound") + "/webhooks/twilio/sms"

    def send(form):
        resp = client.post("/webhooks/twilio/sms", data=form,
                           headers={"X-Twilio-Signature": twilio_signature(url, form)})
        assert resp.status_code == 200, resp.data
    return send


def thread_of(inbound) -> ConversationThread:
    with inbound.runtime.db.read() as session:
        [thread] = session.scalars(sa.select(ConversationThread)).all()
        return thread


@pytest.mark.integration
def test_a_question_takes_eleven_statements_and_a_retry_two(inbound, post):
    post(twilio_form("Mae'r bin wedi torri", from_="+447700900001"))    # warm: caches, pool
    question = twilio_form("Pryd mae'r biniau?", from_="+447700900002")
    with counted(inbound.runtime.db.engine) as trips:
        post(question)
    assert len(trips.statements) == QUESTION_STATEMENTS, trips.statements

    with counted(inbound.runtime.db.engine) as trips:
        post(question)                                       # Twilio's retry of the same text
    assert len(trips.statements) == RETRY_STATEMENTS, trips.statements
    with inbound.runtime.db.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)) == 2


@pytest.mark.integration
def test_the_upsert_reopens_a_closed_conversation_and_keeps_an_open_one_s_opening(inbound, post):
    post(twilio_form("Mae'r bin wedi torri"))
    first = thread_of(inbound)
    assert first.status == "open" and first.opened_at is not None

    with inbound.runtime.db.transaction() as session:     # a member of staff closes it
        row = session.get(ConversationThread, first.id)
        row.status, row.closed_at = "closed", row.opened_at + dt.timedelta(minutes=5)
    post(twilio_form("STOP"))                                # an opt-out does not reopen it
    stopped = thread_of(inbound)
    assert (stopped.status, stopped.closed_at) == ("closed", first.opened_at
                                                   + dt.timedelta(minutes=5))
    assert stopped.last_message_at > first.last_message_at

    post(twilio_form("Mae'r bin gwyrdd wedi torri hefyd"))     # a question reopens it
    reopened = thread_of(inbound)
    assert (reopened.id, reopened.status, reopened.closed_at) == (first.id, "open", None)
    assert reopened.opened_at > first.opened_at

    post(twilio_form("A pheth arall"))                       # open already: opened_at stays
    again = thread_of(inbound)
    assert (again.status, again.opened_at) == ("open", reopened.opened_at)
    assert again.last_message_at > reopened.last_message_at
