"""Templates: SMS and email in Welsh and English, with a preview per language of the
encoding (GSM-7 or UCS-2, and the letters that make it UCS-2), fragments and cost;
versions and who made each.  The Preview button works without JavaScript; console.js
refreshes the same preview as the text is typed."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_currency
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from services.notify.api_native import template_json
from services.notify.console import Area, audit, db, get_or_404, now, requires, tenant_id
from services.notify.console.forms import RadioInput, SubmitInput, TextArea, TextInput
from services.notify.console.models import AuditEntry
from services.notify.models import Template, TemplateVersion
from services.notify.templates import create_template, snapshot
from shared import smstext

bp = Area("templates", __name__, "/templates", nav=(_l("Templates"), "index", "view", 30))
PRICE_PER_FRAGMENT = 0.024      # GBP, the scheduler's default estimate (services/scheduler/preview.py)


class TemplateForm(FlaskForm):
    name = StringField(_l("Template name"), widget=TextInput(),
                       validators=[InputRequired(_l("Enter a name for the template")),
                                   Length(max=200)])
    type = RadioField(_l("Type"), widget=RadioInput(), choices=[], default="sms")
    subject_cy = StringField(_l("Subject in Welsh"), widget=TextInput())
    subject_en = StringField(_l("Subject in English"), widget=TextInput())
    body_cy = TextAreaField(_l("Message in Welsh"), widget=TextArea(),
                            validators=[InputRequired(_l("Enter the message in Welsh"))])
    body_en = TextAreaField(_l("Message in English"), widget=TextArea(),
                            validators=[InputRequired(_l("Enter the message in English"))])
    preview = SubmitField(_l("Preview"), widget=SubmitInput())
    submit = SubmitField(_l("Save template"), widget=SubmitInput())

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.type.choices = [("sms", _l("Text message")), ("email", _l("Email"))]

    def validate_body_cy(self, field):
        _too_long(self, field)

    def validate_body_en(self, field):
        _too_long(self, field)

    def validate_subject_cy(self, field):
        if self.type.data == "email" and not (field.data or "").strip():
            raise _invalid(_("Enter the subject in Welsh"))

    def validate_subject_en(self, field):
        if self.type.data == "email" and not (field.data or "").strip():
            raise _invalid(_("Enter the subject in English"))


def _invalid(message):
    from wtforms.validators import ValidationError

    return ValidationError(message)


def _too_long(form, field):
    if form.type.data == "sms" and smstext.too_long(smstext.normalise(field.data or "")):
        raise _invalid(_("A text message can be at most %(limit)s characters",
                         limit=smstext.MAX_CHARACTERS))


def analyse(kind: str, body: str, subject: str | None = None) -> dict:
    """What one language's message costs: encoding, the letters that force UCS-2, fragments."""
    if kind != "sms":
        return {"kind": kind, "body": body, "subject": subject}
    text = smstext.normalise(body)
    info = smstext.analyse(text)
    non_gsm = sorted({c for c in text if not smstext.is_gsm(c)})
    cost = info.fragments * PRICE_PER_FRAGMENT
    return {"kind": kind, "body": text, "encoding": info.encoding, "characters": info.characters,
            "fragments": info.fragments, "letters": non_gsm,
            "cost": format_currency(cost, "GBP"),
            "segments": [(c, c in non_gsm) for c in text]}


def previews(form: TemplateForm) -> dict:
    kind = form.type.data or "sms"
    out = {lang: analyse(kind, getattr(form, f"body_{lang}").data or "",
                         getattr(form, f"subject_{lang}").data) for lang in ("cy", "en")}
    if kind == "sms":
        both = (form.body_cy.data or "") + "\n\n" + (form.body_en.data or "")
        out["cy+en"] = analyse(kind, both)
    return out


def state(t: Template) -> dict:
    return template_json(t)


@bp.get("/")
@requires("view")
def index():
    with db().read() as s:
        rows = s.scalars(sa.select(Template).where(Template.tenant_id == tenant_id(),
                                                   Template.archived.is_(False))
                         .order_by(Template.name)).all()
    return render_template("console/template_editor/index.html", templates=rows)


@bp.route("/new", methods=["GET", "POST"])
@requires("edit")
def create():
    form = TemplateForm()
    if form.validate_on_submit() and form.submit.data:
        with db().transaction() as s:
            t = create_template(s, tenant_id(), _args(form))
            s.flush()
            audit.record(s, tenant_id=tenant_id(), action="template.created",
                         target_type="template", target_id=t.id, after=state(t))
            tid = t.id
        flash(_("Template saved"), "success")
        return redirect(url_for(".show", template_id=tid), 303)
    status = 400 if request.method == "POST" and form.errors else 200
    return render_template("console/template_editor/edit.html", form=form, template=None,
                           previews=previews(form) if request.method == "POST" else None), status


@bp.get("/<template_id>")
@requires("view")
def show(template_id: str):
    with db().read() as s:
        t = get_or_404(s, Template, template_id)
        s.expunge(t)
    form = TemplateForm(data={"name": t.name, "type": t.type, "body_cy": t.body_cy,
                              "body_en": t.body_en, "subject_cy": t.subject_cy,
                              "subject_en": t.subject_en}, meta={"csrf": False})
    return render_template("console/template_editor/show.html", template=t,
                           previews=previews(form))


@bp.route("/<template_id>/edit", methods=["GET", "POST"])
@requires("edit")
def edit(template_id: str):
    with db().read() as s:
        t = get_or_404(s, Template, template_id)
        s.expunge(t)
    form = TemplateForm(data={"name": t.name, "type": t.type, "body_cy": t.body_cy,
                              "body_en": t.body_en, "subject_cy": t.subject_cy,
                              "subject_en": t.subject_en})
    if request.method == "POST":
        form.type.data = t.type              # a template's type never changes
    if form.validate_on_submit() and form.submit.data:
        with db().transaction() as s:
            t = get_or_404(s, Template, template_id)
            before = state(t)
            args = _args(form)
            t.name = args["name"]
            t.body_cy, t.body_en = args["body"]["cy"], args["body"]["en"]
            if t.type == "email":
                t.subject_cy, t.subject_en = args["subject"]["cy"], args["subject"]["en"]
            if state(t) != before:
                t.version += 1
                t.updated_at = now()
                s.add(snapshot(t))
                audit.record(s, tenant_id=tenant_id(), action="template.updated",
                             target_type="template", target_id=t.id, before=before,
                             after=state(t))
        flash(_("Template saved"), "success")
        return redirect(url_for(".show", template_id=template_id), 303)
    status = 400 if request.method == "POST" and form.errors else 200
    return render_template("console/template_editor/edit.html", form=form, template=t,
                           previews=previews(form)), status


@bp.post("/preview")
@requires("edit")
def live_preview():
    """The preview alone (HTML), for console.js as the text is typed."""
    form = TemplateForm()
    if form.type.data not in ("sms", "email"):
        abort(400)
    return render_template("console/template_editor/_preview.html", previews=previews(form))


@bp.get("/<template_id>/versions")
@requires("view")
def versions(template_id: str):
    with db().read() as s:
        t = get_or_404(s, Template, template_id)
        rows = s.scalars(sa.select(TemplateVersion).where(TemplateVersion.template_id == t.id)
                         .order_by(TemplateVersion.version.desc())).all()
        entries = s.scalars(sa.select(AuditEntry).where(
            AuditEntry.tenant_id == tenant_id(), AuditEntry.target_id == t.id)).all()
        s.expunge_all()
    who = {}
    for e in entries:
        version = (e.after or {}).get("version")
        if version is not None:
            who[version] = e.actor_label or e.actor_type
    return render_template("console/template_editor/versions.html", template=t, versions=rows,
                           who=who)


def _args(form: TemplateForm) -> dict:
    kind = form.type.data
    return {"name": form.name.data.strip(), "type": kind,
            "body": {"cy": form.body_cy.data, "en": form.body_en.data},
            "subject": {"cy": form.subject_cy.data, "en": form.subject_en.data}
            if kind == "email" else {}}
