"""Inbox: citizens' conversations and service requests, answered, assigned and closed.

Both are inbound's (``/api/conversations``, ``/api/service-requests``).  An answer goes
by SMS through notify in the conversation's language; where the citizen's language is
not known the page asks for both texts, and the citizen gets them Welsh first.  Reading
is for every role; answering, assigning and closing need ``send``.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, SubmitField, TextAreaField
from wtforms.validators import Length, Optional

from services.notify.console import Area, audit, db, requires, tenant_id
from services.notify.console.clients import ServiceError, clients, guard
from services.notify.console.forms import Select, SubmitInput, TextArea
from services.notify.console.models import StaffUser

bp = Area("inbox", __name__, "/inbox", nav=[(_l("Inbox"), "index", "view", 60),
                                            (_l("Service requests"), "requests", "view", 62)])
guard(bp)

MAX_ANSWER = 918


class AnswerForm(FlaskForm):
    body = TextAreaField(_l("Your answer"), widget=TextArea(),
                         validators=[Optional(), Length(max=MAX_ANSWER)])
    body_cy = TextAreaField(_l("Your answer in Welsh"), widget=TextArea(),
                            validators=[Optional(), Length(max=MAX_ANSWER)])
    body_en = TextAreaField(_l("Your answer in English"), widget=TextArea(),
                            validators=[Optional(), Length(max=MAX_ANSWER)])
    submit = SubmitField(_l("Send answer"), widget=SubmitInput())


class AssignForm(FlaskForm):
    assigned_to = SelectField(_l("Assigned to"), widget=Select(), choices=[],
                              validate_choice=False)
    submit = SubmitField(_l("Assign"), widget=SubmitInput())


class RequestForm(FlaskForm):
    status_notes = TextAreaField(_l("Note for the citizen"), widget=TextArea(),
                                 description=_l("They get it by text with the request's "
                                                "reference."),
                                 validators=[Optional(), Length(max=1000)])
    submit = SubmitField(_l("Close the request"), widget=SubmitInput())


def _team() -> list[tuple[str, str]]:
    with db().read() as s:
        people = s.scalars(sa.select(StaffUser).where(StaffUser.tenant_id == tenant_id())
                           .order_by(StaffUser.name))
        return [(p.email, f"{p.name} ({p.email})") for p in people]


def _assign_form(current: str | None) -> AssignForm:
    form = AssignForm(formdata=None)
    form.assigned_to.choices = [("", _("Nobody"))] + _team()
    form.assigned_to.data = current or ""
    return form


@bp.get("/")
@requires("view")
def index():
    status = request.args.get("status", "open")
    mine = request.args.get("mine") == "1"
    filters = {"status": status if status in ("open", "closed") else None, "page_size": 50,
               "older_than": request.args.get("older_than")}
    if mine:
        filters["assigned_to"] = g.staff.email
    listed = clients().inbound.conversations(**filters)
    rows = listed.get("conversations") or []
    more = rows[-1]["id"] if len(rows) == 50 else None
    return render_template("console/inbox/index.html", conversations=rows, status=status,
                           mine=mine, more=more)


@bp.get("/conversation/<conversation_id>")
@requires("view")
def conversation(conversation_id: str):
    c = clients().inbound.conversation(conversation_id)
    return _page(c, AnswerForm(formdata=None))


def _page(c: dict, form: AnswerForm, status: int = 200):
    messages = sorted(c.get("messages") or [], key=lambda m: m.get("at") or "")
    return render_template("console/inbox/conversation.html", c=c, messages=messages,
                           form=form, assign=_assign_form(c.get("assigned_to"))), status


@bp.post("/conversation/<conversation_id>/answer")
@requires("send")
def answer(conversation_id: str):
    api = clients().inbound
    c = api.conversation(conversation_id)
    form = AnswerForm()
    body: dict = {"author": g.staff.email}
    if form.validate_on_submit():
        if c.get("language") in ("cy", "en"):
            if not (form.body.data or "").strip():
                form.body.errors = [_("Write your answer")]
            body["body"] = (form.body.data or "").strip()
        else:
            for field, name in ((form.body_cy, "body_cy"), (form.body_en, "body_en")):
                if not (field.data or "").strip():
                    field.errors = [_("Write your answer in Welsh") if name == "body_cy"
                                    else _("Write your answer in English")]
                body[name] = (field.data or "").strip()
        if not form.errors:
            try:
                api.answer(c["id"], body)
            except ServiceError as exc:
                if exc.status not in (400, 409):
                    raise
                form.body.errors = exc.messages
            else:
                with db().transaction() as s:
                    audit.record(s, tenant_id=tenant_id(), action="conversation.answered",
                                 target_type="conversation", target_id=c["id"],
                                 after={k: v for k, v in body.items() if k != "author"})
                flash(_("Your answer is on its way."), "success")
                return redirect(url_for(".conversation", conversation_id=c["id"]), 303)
    return _page(c, form, 400)


@bp.post("/conversation/<conversation_id>/assign")
@requires("send")
def assign(conversation_id: str):
    api = clients().inbound
    c = api.conversation(conversation_id)
    who = (request.form.get("assigned_to") or "").strip() or None
    if who is not None and who not in {e for e, _ in _team()}:
        abort(400)
    api.change_conversation(c["id"], {"assigned_to": who})
    with db().transaction() as s:
        audit.record(s, tenant_id=tenant_id(), action="conversation.assigned",
                     target_type="conversation", target_id=c["id"],
                     before={"assigned_to": c.get("assigned_to")}, after={"assigned_to": who})
    flash(_("Assigned to %(who)s.", who=who) if who else _("Assigned to nobody."), "success")
    return redirect(url_for(".conversation", conversation_id=c["id"]), 303)


@bp.post("/conversation/<conversation_id>/close")
@requires("send")
def close(conversation_id: str):
    return _change_status(conversation_id, "close")


@bp.post("/conversation/<conversation_id>/reopen")
@requires("send")
def reopen(conversation_id: str):
    return _change_status(conversation_id, "reopen")


def _change_status(conversation_id: str, action: str):
    api = clients().inbound
    c = api.conversation(conversation_id)
    status = "closed" if action == "close" else "open"
    api.change_conversation(c["id"], {"status": status})
    with db().transaction() as s:
        audit.record(s, tenant_id=tenant_id(), action=f"conversation.{action}d",
                     target_type="conversation", target_id=c["id"],
                     before={"status": c.get("status")}, after={"status": status})
    flash(_("The conversation is closed.") if status == "closed"
          else _("The conversation is open again."), "success")
    return redirect(url_for(".conversation", conversation_id=c["id"]), 303)


@bp.get("/requests")
@requires("view")
def requests():
    status = request.args.get("status", "open")
    listed = clients().inbound.service_requests(
        status=status if status in ("open", "closed") else None, page_size=50)
    return render_template("console/inbox/requests.html",
                           requests=listed.get("service_requests") or [], status=status)


@bp.get("/requests/<reference>")
@requires("view")
def service_request(reference: str):
    r = clients().inbound.service_request(reference)
    return render_template("console/inbox/request.html", r=r, form=RequestForm(formdata=None))


@bp.post("/requests/<reference>/close")
@requires("send")
def close_request(reference: str):
    """Close a request; the citizen who texted it is told, with the note."""
    api = clients().inbound
    r = api.service_request(reference)
    form = RequestForm()
    if not form.validate_on_submit():
        return render_template("console/inbox/request.html", r=r, form=form), 400
    api.change_service_request(r["reference"], {"status": "closed",
                                                "status_notes": form.status_notes.data or None})
    with db().transaction() as s:
        audit.record(s, tenant_id=tenant_id(), action="service_request.closed",
                     target_type="service_request", target_id=r["reference"],
                     before={"status": r.get("status")}, after={"status": "closed"})
    flash(_("The request is closed and the citizen has been told."), "success")
    return redirect(url_for(".service_request", reference=r["reference"]), 303)
