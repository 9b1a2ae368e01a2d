"""The staff inbox: one conversation per citizen per tenant, every message in and out.

A conversation is kept for each number that has texted a tenant.  What goes in it:

* every reply the citizen sends (``reply``), with the campaign or appointment
  it answered (the conversation context, :class:`~services.inbound.models.Conversation`)
  and the service request it made;
* the platform's answer to it (``auto_reply``), the "your report was closed"
  texts (``status_update``) and the team's own answers (``staff_answer``);
* the texts notify sends that number once it has a conversation
  (``notification``, as inbound hears them on ``notification.sent``: which
  campaign or appointment, not the words, which notify keeps); the last text
  sent before the first reply is added when the conversation starts, so a
  reply is always shown beside what it answered.

A conversation is **open** while it waits for a person: a question, or a reply
nothing else understood (routing's ``question``), opens it, or reopens a closed
one.  Replies the platform answers itself (MISSED, WHEN, STOP...) are kept in
it but do not open it.  Staff assign it (free text), answer it and close it.

A staff answer is a ``notification.requested`` for notify, like every other
text the platform sends: suppression, quiet hours and throttles apply there,
never a provider call from here.  Its language is the citizen's
(:func:`answer_language`).
"""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.inbound import routing
from services.inbound.models import (
    ConversationMessage,
    ConversationThread,
    LanguagePreference,
)
from shared import events, pii
from shared.db import insert_for, utcnow
from shared.errors import ApiError, NotFound, ValidationError
from shared.http import iso
from shared.tenancy import Tenant

# What opens (or reopens) a conversation: a text that needs a person.
OPENS = frozenset({routing.QUESTION})
# notification ids of staff answers: uuid5 of the message id, so a retry asks once
ANSWER_NAMESPACE = uuid.UUID("0c5e6f1a-3b2d-4e7a-9f10-2d8c4b6a1e37")
MAX_MESSAGES = 500          # the newest shown by GET /api/conversations/{id}


def phone_key(session: Session, phone: str) -> str:
    """What a conversation is looked up by for a number: its keyed hash (shared.pii);
    ``phone`` itself is stored encrypted, the number an answer is sent to."""
    return pii.lookup_hash(session, phone)


def _thread_by_phone(session: Session, tenant_id: str, phone: str) -> ConversationThread | None:
    return session.scalars(sa.select(ConversationThread).where(
        ConversationThread.tenant_id == tenant_id,
        ConversationThread.phone_hash == phone_key(session, phone))).first()


def _get_or_create(session: Session, tenant_id: str, phone: str, at: dt.datetime,
                   last_at: dt.datetime | None = None, opens: bool = False
                   ) -> tuple[ConversationThread, bool]:
    """The number's conversation, made if it is new, and whether it was: one statement
    either way, an upsert that returns the row.  Its last time moves on to ``last_at``
    (``at`` if not given); ``opens`` opens it (a question), if it is not open already.
    ON CONFLICT: two replies from one number at once make one conversation."""
    made_id = str(uuid.uuid4())
    thread = ConversationThread
    stmt = insert_for(session, thread).values(
        id=made_id, tenant_id=tenant_id, phone=phone, phone_hash=phone_key(session, phone),
        status="open" if opens else "closed", opened_at=at if opens else None,
        created_at=at, last_message_at=last_at or at)
    new = stmt.excluded
    changes = {"last_message_at": sa.case((thread.last_message_at < new.last_message_at,
                                           new.last_message_at),
                                          else_=thread.last_message_at)}
    if opens:
        # every right-hand side reads the row as it was, so "was it open?" is asked of each
        was_open = thread.status == "open"
        changes.update(status="open",
                       opened_at=sa.case((was_open, thread.opened_at), else_=new.opened_at),
                       closed_at=sa.case((was_open, thread.closed_at), else_=sa.null()))
    stmt = stmt.on_conflict_do_update(
        index_elements=[thread.tenant_id, thread.phone_hash], set_=changes)
    row = session.scalars(stmt.returning(thread),
                          execution_options={"populate_existing": True}).one()
    return row, row.id == made_id


def _add(session: Session, thread: ConversationThread, **row) -> None:
    """One message (once per notification or inbound message id), and the thread's last time."""
    _add_all(session, thread, [row])


def _add_all(session: Session, thread: ConversationThread, rows: list[dict]) -> None:
    """Messages in one statement (each once per notification or inbound message id), and
    the thread's last time."""
    columns = {key for row in rows for key in row} | {"id"}
    rows = [{**dict.fromkeys(columns), **row} for row in rows]
    for row in rows:
        row["id"] = row["id"] or str(uuid.uuid4())
        row.update(conversation_id=thread.id, tenant_id=thread.tenant_id)
    # render_nulls: every row names every column, so they go as one batch
    session.execute(insert_for(session, ConversationMessage).on_conflict_do_nothing(), rows,
                    execution_options={"render_nulls": True})
    last = max(row["at"] for row in rows)
    if last > thread.last_message_at:
        thread.last_message_at = last


def _body_of(personalisation: dict, language: str | None) -> str | None:
    """An auto-reply's words as asked of notify: the language's, or both, Welsh first."""
    if language in ("cy", "en"):
        return personalisation.get(f"reply_{language}")
    texts = [personalisation.get(f"reply_{lang}") for lang in ("cy", "en")]
    texts = [t for i, t in enumerate(texts) if t and t not in texts[:i]]
    return "\n\n".join(texts) or None


def record_reply(session: Session, tenant: Tenant, *, message_id: str, phone: str, body: str,
                 keyword: str | None, action: str, reference: str | None,
                 language: str | None, received_at: dt.datetime,
                 context: routing.Context | None, service_request: str | None,
                 answers: list[events.Event], service_code: str | None = None,
                 inline_answer: str | None = None, appointment_id: str | None = None,
                 appointment_reference: str | None = None) -> ConversationThread:
    """A reply and what the platform answered, in the citizen's conversation (the caller
    commits).  A question opens it; ``answers`` are the ``notification.requested`` events
    made for the reply; ``inline_answer`` the text answered at once in TwiML (HELP).
    ``appointment_id``/``appointment_reference``: the appointment the reply acted on,
    when it named one (else the reminded one, from the context)."""
    rows: list[dict] = []
    rows.append(dict(
        id=message_id, direction="in", kind="reply", body=body, language=language,
        keyword=keyword or service_code, action=action, reference=reference,
        service_request=service_request, inbound_message_id=message_id,
        campaign_id=context.campaign_id if context else None,
        appointment_id=appointment_id or (context.appointment_id if context else None),
        appointment_reference=appointment_reference or (
            context.appointment_reference if context else None),
        status="received", at=received_at))
    if inline_answer:
        rows.append(dict(direction="out", kind="auto_reply", body=inline_answer,
                         reference=reference, status="sent",
                         at=received_at + dt.timedelta(microseconds=1)))
    for event in answers:
        d = event.data
        rows.append(dict(direction="out", kind="auto_reply",
                         body=_body_of(d.get("personalisation") or {}, d.get("language")),
                         language=d.get("language"), reference=d.get("reference"),
                         service_request=service_request,
                         notification_id=str(d["notification_id"]),
                         status="requested", at=received_at + dt.timedelta(microseconds=1)))
    # one statement for the thread (made, opened, its last time) and one for the messages
    thread, created = _get_or_create(session, tenant.id, phone, received_at,
                                     last_at=max(row["at"] for row in rows),
                                     opens=action in OPENS)
    if created and context is not None:
        # the text this first reply answers
        rows.insert(0, dict(direction="out", kind="notification", body=None,
                            notification_id=context.notification_id,
                            campaign_id=context.campaign_id,
                            appointment_id=context.appointment_id,
                            appointment_reference=context.appointment_reference,
                            status="sent", at=context.sent_at))
    _add_all(session, thread, rows)
    return thread


def record_status_update(session: Session, tenant_id: str, phone: str, event: events.Event,
                         service_request: str) -> None:
    """"Your report … was closed", texted on the team's change: in the conversation, if any."""
    thread = _thread_by_phone(session, tenant_id, phone)
    if thread is None:
        return
    d = event.data
    _add(session, thread, direction="out", kind="status_update",
         body=_body_of(d.get("personalisation") or {}, d.get("language")),
         language=d.get("language"), reference=service_request, service_request=service_request,
         notification_id=str(d["notification_id"]), status="requested", at=utcnow())


# -- notification.sent: what notify sent to numbers that have a conversation -----------

def _sent_row(event: events.Event) -> dict | None:
    from shared import phone as phones

    d = event.data
    if d.get("channel") != "sms" or not d.get("recipient") or event.tenant_id is None:
        return None
    return {"tenant_id": str(event.tenant_id),
            "phone": phones.try_normalise(d["recipient"]) or d["recipient"],
            "notification_id": str(d["notification_id"]),
            "campaign_id": _str(d.get("campaign_id")),
            "appointment_id": _str(d.get("appointment_id")),
            "appointment_reference": _str(d.get("appointment_reference")),
            "at": event.occurred_at}


def record_sent(event: events.Event, session: Session) -> None:
    """notification.sent: one event (see :func:`record_sent_many`)."""
    record_sent_many([event], session)


def record_sent_many(batch: list[events.Event], session: Session) -> None:
    """A batch of sends: an answer already in a conversation is now ``sent``; any other
    text to a number with a conversation joins it.  Three indexed statements a batch,
    whatever its size, so a bin night's million sends cost little here."""
    rows = [r for r in map(_sent_row, batch) if r is not None]
    if not rows:
        return
    ids = [r["notification_id"] for r in rows]
    session.execute(sa.update(ConversationMessage).where(
        ConversationMessage.notification_id.in_(ids),
        ConversationMessage.status == "requested").values(status="sent"))
    known = set(session.scalars(sa.select(ConversationMessage.notification_id).where(
        ConversationMessage.notification_id.in_(ids))))
    fresh = [r for r in rows if r["notification_id"] not in known]
    by_tenant: dict[str, set[str]] = {}
    for r in fresh:
        by_tenant.setdefault(r["tenant_id"], set()).add(phone_key(session, r["phone"]))
    threads: dict[tuple[str, str], ConversationThread] = {}
    for tenant_id, phones in by_tenant.items():
        for thread in session.scalars(sa.select(ConversationThread).where(
                ConversationThread.tenant_id == tenant_id,
                ConversationThread.phone_hash.in_(sorted(phones)))):
            threads[(thread.tenant_id, thread.phone_hash)] = thread
    for r in fresh:
        thread = threads.get((r["tenant_id"], phone_key(session, r["phone"])))
        if thread is None:
            continue
        _add(session, thread, direction="out", kind="notification", body=None,
             notification_id=r["notification_id"], campaign_id=r["campaign_id"],
             appointment_id=r["appointment_id"],
             appointment_reference=r["appointment_reference"], status="sent", at=r["at"])



def _str(value) -> str | None:
    return str(value) if value else None


# -- the team's side -----------------------------------------------------------------

def find(session: Session, tenant_id: str, ident: str) -> ConversationThread:
    """A tenant's conversation by id; the same 404 for anyone else's and for none."""
    try:
        ident = str(uuid.UUID(ident))
    except (ValueError, AttributeError, TypeError):
        raise NotFound() from None
    thread = session.scalars(sa.select(ConversationThread).where(
        ConversationThread.tenant_id == tenant_id, ConversationThread.id == ident)).first()
    if thread is None:
        raise NotFound()
    return thread


def answer_language(session: Session, tenant: Tenant, thread: ConversationThread
                    ) -> str | None:
    """The language a staff answer goes in: "cy", "en", or None (both, Welsh first).

    What the citizen's language rule is given: their recorded choice for this
    tenant, and the language their latest reply was answered in (which the rule
    chose when the reply came); the rule itself is :func:`_language_rule`.
    """
    preference = session.get(LanguagePreference, (tenant.id, phone_key(session, thread.phone)))
    replied_in = session.scalars(sa.select(ConversationMessage.language).where(
        ConversationMessage.conversation_id == thread.id,
        ConversationMessage.direction == "in").order_by(
        ConversationMessage.at.desc()).limit(1)).first()
    return _language_rule(tenant, preference.language if preference else None, replied_in)


def _language_rule(tenant: Tenant, recorded: str | None, replied_in: str | None) -> str | None:
    """The one place the inbox calls the platform's language rule (autoreplies): the
    citizen's recorded language, else the language their latest reply was answered
    in, else both, Welsh first (a staff answer has no keyword of its own)."""
    from services.inbound import autoreplies

    return autoreplies.choose_language(recorded, replied_in, None)


def answer(session: Session, tenant: Tenant, thread: ConversationThread, *,
           body: str | None, body_cy: str | None, body_en: str | None, author: str,
           cid: str | None = None) -> dict:
    """A staff answer: the message, and the ``notification.requested`` in the outbox."""
    from shared import outbox

    template_id = (tenant.config or {}).get("reply_template_id")
    if not template_id:
        raise ApiError("this tenant has no reply template (reply_template_id): answers "
                       "cannot be sent", 409, "ConflictError")
    language = answer_language(session, tenant, thread)
    texts = _answer_texts(language, body, body_cy, body_en)
    message_id = str(uuid.uuid4())
    notification_id = str(uuid.uuid5(ANSWER_NAMESPACE, message_id))
    event = events.make(
        "notification.requested", tenant.id, cid, notification_id=notification_id,
        template_id=template_id, channel="sms", recipient=thread.phone, language=language,
        personalisation=texts, reference=f"conversation:{thread.id}"[:64],
        # a person's answer, not an alarm: quiet hours and throttles apply, as to any text
        urgent=False)
    outbox.add(session, event)
    now = utcnow()
    _add(session, thread, id=message_id, direction="out", kind="staff_answer",
         body=_body_of(texts, language), language=language, notification_id=notification_id,
         status="requested", author=author, at=now)
    return message_json(session.get(ConversationMessage, message_id))


def _answer_texts(language: str | None, body: str | None, body_cy: str | None,
                  body_en: str | None) -> dict[str, str]:
    if body is not None and (body_cy is not None or body_en is not None):
        raise ValidationError("body: give body, or body_cy and body_en, not both")
    if body is None and body_cy is None and body_en is None:
        raise ValidationError("body is required (or body_cy and body_en)")
    if body is not None:
        return {"reply_cy": body, "reply_en": body}
    needed = [language] if language in ("cy", "en") else ["cy", "en"]
    given = {"cy": body_cy, "en": body_en}
    for lang in needed:
        if given[lang] is None:
            reads = {"cy": "Welsh", "en": "English"}[lang] if language else \
                "both languages, Welsh first"
            raise ValidationError(f"body_{lang} is required: this citizen is answered in "
                                  f"{reads}")
    return {f"reply_{lang}": given[lang] or given[needed[0]] for lang in ("cy", "en")}


def change(thread: ConversationThread, *, status: str | None = None,
           assigned_to: str | None | type = ..., ) -> None:
    """Close, reopen, assign (``None`` unassigns)."""
    now = utcnow()
    if status == "closed" and thread.status != "closed":
        thread.status, thread.closed_at = "closed", now
    elif status == "open" and thread.status != "open":
        thread.status, thread.opened_at, thread.closed_at = "open", now, None
    if assigned_to is not ...:
        thread.assigned_to = (assigned_to or "").strip() or None


def listing(session: Session, tenant_id: str, args: dict) -> list[ConversationThread]:
    C = ConversationThread
    q = sa.select(C).where(C.tenant_id == tenant_id)
    if args.get("status"):
        q = q.where(C.status == args["status"])
    if args.get("assigned_to"):
        q = q.where(C.assigned_to == args["assigned_to"].strip())
    if args.get("assigned") is True:
        q = q.where(C.assigned_to.is_not(None))
    elif args.get("assigned") is False:
        q = q.where(C.assigned_to.is_(None))
    if args.get("since"):
        q = q.where(C.last_message_at >= args["since"])
    if args.get("until"):
        q = q.where(C.last_message_at < args["until"])
    if args.get("keyword"):
        word = args["keyword"].strip().lower()
        M = ConversationMessage
        q = q.where(sa.exists().where(M.conversation_id == C.id, M.direction == "in",
                                      sa.or_(sa.func.lower(M.keyword) == word,
                                             sa.func.lower(M.action) == word)))
    if args.get("older_than"):
        anchor = find(session, tenant_id, str(args["older_than"]))
        q = q.where(sa.tuple_(C.last_message_at, C.id) < (anchor.last_message_at, anchor.id))
    return list(session.scalars(q.order_by(C.last_message_at.desc(), C.id.desc())
                                .limit(args["page_size"])))


def messages(session: Session, thread_id: str, limit: int = MAX_MESSAGES
             ) -> list[ConversationMessage]:
    M = ConversationMessage
    return list(session.scalars(sa.select(M).where(M.conversation_id == thread_id)
                                .order_by(M.at.desc(), M.id.desc()).limit(limit)))


def summaries(session: Session, threads: list[ConversationThread]) -> dict[str, tuple]:
    """{thread id: (message count, newest message)} for a page, in two statements."""
    if not threads:
        return {}
    M = ConversationMessage
    ids = [t.id for t in threads]
    counts = dict(session.execute(sa.select(M.conversation_id, sa.func.count())
                                  .where(M.conversation_id.in_(ids))
                                  .group_by(M.conversation_id)).all())
    newest_at = (sa.select(M.conversation_id, sa.func.max(M.at).label("at"))
                 .where(M.conversation_id.in_(ids)).group_by(M.conversation_id).subquery())
    newest: dict[str, ConversationMessage] = {}
    for m in session.scalars(sa.select(M).join(newest_at, sa.and_(
            M.conversation_id == newest_at.c.conversation_id, M.at == newest_at.c.at))
            .order_by(M.id)):
        newest.setdefault(m.conversation_id, m)
    return {i: (counts.get(i, 0), newest.get(i)) for i in ids}


def message_json(m: ConversationMessage | None) -> dict | None:
    if m is None:
        return None
    return {"id": m.id, "direction": m.direction, "kind": m.kind, "body": m.body,
            "language": m.language, "keyword": m.keyword, "action": m.action,
            "reference": m.reference, "service_request": m.service_request,
            "campaign_id": m.campaign_id, "appointment_id": m.appointment_id,
            "appointment_reference": m.appointment_reference,
            "notification_id": m.notification_id, "status": m.status, "author": m.author,
            "at": iso(m.at)}


def as_json(t: ConversationThread, language: str | None, count: int,
            last: ConversationMessage | None) -> dict:
    return {"id": t.id, "phone": t.phone, "status": t.status, "assigned_to": t.assigned_to,
            "language": language, "opened_at": iso(t.opened_at), "closed_at": iso(t.closed_at),
            "last_message_at": iso(t.last_message_at), "created_at": iso(t.created_at),
            "message_count": count, "last_message": message_json(last)}
