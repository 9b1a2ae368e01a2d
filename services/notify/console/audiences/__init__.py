"""Audiences: the scheduler's subscribers, through its API.

Upload a CSV (each bad row shown against its own cells, the good rows kept), search by
number or email, change a subscriber's language, attributes and opt-out, erase one.
Opting out is notify's suppression list (this service's own table, the citizen's
standing choice): changing it here publishes ``subscriber.opted_out|opted_in`` as the
API does, and the scheduler follows.
"""
from __future__ import annotations

import csv
import io
import uuid

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from govuk_frontend_wtf import wtforms_widgets as gov
from wtforms import RadioField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Optional

from services.notify import suppressions
from services.notify.console import Area, audit, db, requires, tenant_id
from services.notify.console.clients import ServiceError, clients, guard
from services.notify.console.forms import RadioInput, SubmitInput, TextArea, TextInput
from services.notify.console.forms import _Welsh as Welsh
from services.notify.sending import find_suppression
from shared import phone

bp = Area("audiences", __name__, "/audiences", nav=(_l("Audiences"), "index", "view", 40))
guard(bp)

MAX_UPLOAD = 5 * 1024 * 1024
PAGE = 50


class FileInput(Welsh, gov.GovFileInput):
    pass


class UploadForm(FlaskForm):
    file = FileField(_l("CSV file of subscribers"), widget=FileInput(),
                     description=_l("A header row with phone and/or email, optionally "
                                    "language (cy or en); every other column is kept as an "
                                    "attribute, such as round or uprn."),
                     validators=[InputRequired(_l("Choose a CSV file to upload"))])
    submit = SubmitField(_l("Upload"), widget=SubmitInput())


class SearchForm(FlaskForm):
    class Meta:
        csrf = False                       # a GET search changes nothing

    q = StringField(_l("Phone number or email address"), widget=TextInput(),
                    validators=[Optional()])
    submit = SubmitField(_l("Search"), widget=SubmitInput())


class EditForm(FlaskForm):
    language = RadioField(_l("Language"), widget=RadioInput(),
                          choices=[("cy", _l("Welsh")), ("en", _l("English")),
                                   ("", _l("Not known (both, Welsh first)"))],
                          validators=[Optional()], validate_choice=False)
    attributes = TextAreaField(_l("Attributes"), widget=TextArea(),
                               description=_l("One a line, as name = value, for example "
                                              "round = A"))
    opted_out = RadioField(_l("Messages"), widget=RadioInput(),
                           choices=[("no", _l("Gets messages")),
                                    ("yes", _l("Opted out: gets no messages"))],
                           validators=[InputRequired(_l("Choose whether they get messages"))])
    submit = SubmitField(_l("Save changes"), widget=SubmitInput())


def _id_or_404(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        abort(404)


def parse_attributes(text: str) -> tuple[dict, list[int]]:
    """``name = value`` lines as a dict, and the numbers of lines that are not."""
    out, bad = {}, []
    for n, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            bad.append(n)
            continue
        out[name.strip()] = value.strip()
    return out, bad


def opted_out(session, sub: dict) -> bool:
    """Whether notify holds an opt-out for the subscriber's number or address."""
    for channel, recipient in (("sms", sub.get("phone")), ("email", sub.get("email"))):
        if recipient and find_suppression(session, tenant_id(), channel, recipient):
            return True
    return False


@bp.get("/")
@requires("view")
def index():
    form = SearchForm(request.args)
    filters: dict = {"page_size": PAGE, "older_than": request.args.get("older_than")}
    query = (form.q.data or "").strip()
    if query:
        if "@" in query:
            filters["email"] = query
        else:
            filters["phone"] = phone.try_normalise(query) or query
    listed = clients().scheduler.subscribers(**filters)
    rows = listed.get("subscribers") or []
    more = rows[-1]["id"] if len(rows) == PAGE else None
    return render_template("console/audiences/index.html", form=form, subscribers=rows,
                           query=query, more=more)


@bp.route("/upload", methods=["GET", "POST"])
@requires("edit")
def upload():
    form = UploadForm()
    if not form.validate_on_submit():
        return render_template("console/audiences/upload.html", form=form), (
            400 if request.method == "POST" else 200)
    data = form.file.data.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        form.file.errors = [_("The file must be smaller than 5 MB")]
        return render_template("console/audiences/upload.html", form=form), 400
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        form.file.errors = [_("The file must be a CSV file saved as UTF-8")]
        return render_template("console/audiences/upload.html", form=form), 400
    try:
        outcome = clients().scheduler.upload_subscribers(text.encode())
    except ServiceError as exc:
        if exc.status != 400:
            raise
        form.file.errors = [" ".join(exc.messages) or _("The file could not be read")]
        return render_template("console/audiences/upload.html", form=form), 400
    with db().transaction() as s:
        audit.record(s, tenant_id=tenant_id(), action="subscribers.uploaded",
                     target_type="upload", target_id=form.file.data.filename or None,
                     after={k: outcome.get(k) for k in ("rows", "created", "updated",
                                                        "errors_total")})
    return render_template("console/audiences/uploaded.html", outcome=outcome,
                           problems=rows_with_errors(text, outcome.get("errors") or []),
                           filename=form.file.data.filename)


def rows_with_errors(text: str, errors: list[dict]) -> dict:
    """The header and each bad line's own cells, so the page shows the error against its row."""
    wanted = {int(e["row"]): e["reason"] for e in errors if e.get("row")}
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    rows = []
    for n, cells in enumerate(reader, start=2):
        if n in wanted:
            rows.append({"row": n, "cells": cells, "reason": wanted.pop(n)})
        if not wanted:
            break
    rows += [{"row": n, "cells": [], "reason": reason} for n, reason in sorted(wanted.items())]
    return {"header": header, "rows": rows}


@bp.get("/<subscriber_id>")
@requires("view")
def detail(subscriber_id: str):
    sub = clients().scheduler.subscriber(_id_or_404(subscriber_id))
    with db().read() as s:
        out = opted_out(s, sub)
    return render_template("console/audiences/detail.html", sub=sub, opted_out=out)


@bp.route("/<subscriber_id>/edit", methods=["GET", "POST"])
@requires("edit")
def edit(subscriber_id: str):
    sid = _id_or_404(subscriber_id)
    api = clients().scheduler
    sub = api.subscriber(sid)
    with db().read() as s:
        was_out = opted_out(s, sub)
    form = EditForm()
    if request.method == "GET":
        form.language.data = sub.get("language") or ""
        form.attributes.data = "\n".join(f"{k} = {v}" for k, v in
                                         (sub.get("attributes") or {}).items())
        form.opted_out.data = "yes" if was_out else "no"
    elif form.validate_on_submit():
        attributes, bad = parse_attributes(form.attributes.data)
        if bad:
            form.attributes.errors = [_("Line %(lines)s is not name = value",
                                        lines=", ".join(map(str, bad)))]
        else:
            try:
                changed = api.change_subscriber(sid, {"language": form.language.data or None,
                                                      "attributes": attributes})
            except ServiceError as exc:
                if exc.status != 400:
                    raise
                form.attributes.errors = exc.messages
            else:
                _set_opt_out(sub, form.opted_out.data == "yes", was_out)
                with db().transaction() as s:
                    audit.record(s, tenant_id=tenant_id(), action="subscriber.changed",
                                 target_type="subscriber", target_id=sid,
                                 before={"language": sub.get("language"),
                                         "attributes": sub.get("attributes"),
                                         "opted_out": was_out},
                                 after={"language": changed.get("language"),
                                        "attributes": changed.get("attributes"),
                                        "opted_out": form.opted_out.data == "yes"})
                flash(_("The subscriber's details are saved."), "success")
                return redirect(url_for(".detail", subscriber_id=sid), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("console/audiences/edit.html", form=form, sub=sub), status


def _set_opt_out(sub: dict, out: bool, was_out: bool) -> None:
    if out == was_out:
        return
    cid = g.get("correlation_id")
    with db().transaction() as s:
        for channel, recipient in (("sms", sub.get("phone")), ("email", sub.get("email"))):
            if not recipient:
                continue
            if out:
                suppressions.suppress(s, tenant_id(), channel, recipient, cid)
            else:
                suppressions.unsuppress(s, tenant_id(), channel, recipient, cid)
    from flask import current_app

    current_app.extensions["hysbys.runtime"].relay.nudge.set()


@bp.route("/<subscriber_id>/erase", methods=["GET", "POST"])
@requires("edit")
def erase(subscriber_id: str):
    """Erase (right to erasure): a confirmation page first, the GOV.UK way."""
    sid = _id_or_404(subscriber_id)
    api = clients().scheduler
    sub = api.subscriber(sid)
    if request.method == "POST":
        form = FlaskForm()
        if not form.validate_on_submit():
            abort(400)
        api.erase_subscriber(sid)
        with db().transaction() as s:
            audit.record(s, tenant_id=tenant_id(), action="subscriber.erased",
                         target_type="subscriber", target_id=sid)
        flash(_("The subscriber has been erased."), "success")
        return redirect(url_for(".index"), 303)
    return render_template("console/audiences/erase.html", sub=sub)
