"""Inbound's retention: what a citizen sent, gone (or blanked) after each tenant's period.

Once a tenant's ``retention_days`` (default 7, Europe/London days) are over:

* ``inbound_messages`` — the citizen's number and words — go whole, and so does
  ``conversations`` (which text a reply from that number answers);
* the staff inbox: each ``conversation_messages`` row (a reply, an answer, a
  text sent) goes the period after it was written, like the reply itself; the
  conversation (``conversation_threads``: the number, its status and assignee)
  goes whole once its *last* message is that old, open or closed (a question
  left unanswered that long is still the open service request the reply made);
* ``service_requests`` are the council's record of work and stay, with their
  reference, service, status, dates, status notes and location, so Open311 lists,
  statuses and the figures still work; but once a request is **closed**, the
  columns that identify or quote the citizen are blanked ``retention_days`` after
  its last change: phone, email, names, account and device ids, the description
  (often the reply's own text) and the photo link.  An open request keeps them: the
  team needs them to answer (``notify_citizen`` texts the citizen when it closes).

Kept on purpose: ``language_preferences`` (CYMRAEG / ENGLISH is the citizen's
standing instruction, honoured like an opt-out for as long as the tenant texts
them) and ``issued_references`` (no personal data).
"""
from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from services.inbound.models import (
    Conversation,
    ConversationMessage,
    ConversationThread,
    InboundMessage,
    ServiceRequest,
)
from shared import retention
from shared.db import Database

# what identifies or quotes the citizen; the request's what, where and when stay
CITIZEN_COLUMNS = ("phone", "email", "first_name", "last_name", "account_id", "device_id",
                   "description", "media_url")

PERSONAL_DATA = (
    retention.PersonalData(InboundMessage, "received_at"),
    retention.PersonalData(Conversation, "sent_at"),
    retention.PersonalData(ConversationMessage, "at"),
    retention.PersonalData(ConversationThread, "last_message_at",
                           dependents=((ConversationMessage, "conversation_id"),)),
    retention.PersonalColumns(ServiceRequest, "updated_at", CITIZEN_COLUMNS,
                              when=lambda model: model.status == "closed"),
)
INTERVAL = 300.0


def run_once(db: Database, *, now: dt.datetime | None = None,
             progress: retention.Progress | None = None) -> dict[str, int]:
    return retention.purge(db, PERSONAL_DATA, now=now, progress=progress)


def loop(db: Database, interval: float = INTERVAL) -> Callable[[threading.Event], None]:
    """The background loop the inbound worker runs."""
    return retention.every(interval, lambda: run_once(db), "inbound-retention")
