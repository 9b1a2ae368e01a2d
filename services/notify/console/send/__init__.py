"""Send one message, or a small batch, by hand: choose a template, give the recipients
and the personalisation, see each message as it will go (its language, encoding and
fragments), then send.

The messages are notify's own: stored ``created`` with the sending code the API uses
(``sending.accept``: opted-out recipients end ``suppressed``, quiet hours are the API's)
and the dispatcher woken.  At most MAX_BATCH recipients: more is a campaign or a bulk
upload.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Optional

from services.notify import sending
from services.notify.console import Area, audit, db, now, nudge, requires, tenant_id
from services.notify.console.audiences import parse_attributes
from services.notify.console.forms import RadioInput, SubmitInput, TextArea
from services.notify.models import Template
from services.notify.templates import MissingPersonalisation, render_message
from shared.errors import ValidationError
from shared.tenancy import Tenant

bp = Area("send", __name__, "/send", nav=(_l("Send a message"), "index", "send", 70))

MAX_BATCH = 50


class SendForm(FlaskForm):
    template = RadioField(_l("Template"), widget=RadioInput(), choices=[],
                          validators=[InputRequired(_l("Choose a template"))])
    recipients = TextAreaField(_l("Recipients"), widget=TextArea(), description=_l(
        "Phone numbers or email addresses, one a line (at most 50)"),
        validators=[InputRequired(_l("Enter at least one recipient"))])
    language = RadioField(_l("Language"), widget=RadioInput(), choices=[
        ("cy", _l("Welsh")), ("en", _l("English")), ("", _l("Both, Welsh first"))],
        validators=[Optional()], validate_choice=False, default="")
    personalisation = TextAreaField(_l("Personalisation"), widget=TextArea(), description=_l(
        "The template's placeholders, one a line as name = value"), validators=[Optional()])
    preview = SubmitField(_l("Preview"), widget=SubmitInput())


def _form() -> tuple[SendForm, dict[str, Template]]:
    with db().read() as s:
        found = {t.id: t for t in s.scalars(sa.select(Template).where(
            Template.tenant_id == tenant_id(), Template.archived.is_(False))
            .order_by(Template.name))}
        for t in found.values():
            s.expunge(t)
    form = SendForm()
    form.template.choices = [(t.id, f"{t.name} ({t.type.upper()})") for t in found.values()]
    return form, found


def _messages(form: SendForm, template: Template) -> tuple[list[dict], bool]:
    """Each recipient's message as it will go, and whether any cannot be sent."""
    personalisation, bad = parse_attributes(form.personalisation.data)
    if bad:
        form.personalisation.errors = [_("Line %(lines)s is not name = value",
                                         lines=", ".join(map(str, bad)))]
        return [], True
    lines = [r.strip() for r in (form.recipients.data or "").splitlines() if r.strip()]
    if len(lines) > MAX_BATCH:
        form.recipients.errors = [_("Send to at most %(n)s recipients here; use a campaign "
                                    "for more", n=MAX_BATCH)]
        return [], True
    language = form.language.data or None
    out, blocked = [], False
    for raw in lines:
        item = {"raw": raw, "recipient": None, "problem": None, "text": None}
        try:
            item["recipient"] = sending.normalise_recipient(template.type, raw)
            rendered = render_message(template.type, {"en": template.body_en,
                                                      "cy": template.body_cy},
                                      {"en": template.subject_en, "cy": template.subject_cy},
                                      personalisation, language)
        except ValidationError:
            item["problem"] = (_("Not a phone number") if template.type == "sms"
                               else _("Not an email address"))
        except MissingPersonalisation as exc:
            item["problem"] = _("Missing personalisation: %(names)s",
                                names=", ".join(exc.names))
        else:
            item.update(text=rendered.body, subject=rendered.subject,
                        sms=rendered.sms, language=rendered.language)
        blocked = blocked or item["problem"] is not None
        out.append(item)
    return out, blocked


@bp.route("/", methods=["GET", "POST"])
@requires("send")
def index():
    form, templates = _form()
    if request.method == "POST" and form.validate_on_submit():
        template = templates.get(form.template.data)
        messages, blocked = _messages(form, template)
        if not form.errors and messages:
            if request.form.get("confirm") == "send" and not blocked:
                return _send(template, form, messages)
            return render_template("console/send/preview.html", form=form, template=template,
                                   messages=messages, blocked=blocked)
    status = 400 if request.method == "POST" else 200
    return render_template("console/send/index.html", form=form,
                           no_templates=not templates), status


def _send(template: Template, form: SendForm, messages: list[dict]):
    personalisation, _bad = parse_attributes(form.personalisation.data)
    sent = []
    with db().transaction() as s:
        tenant = s.get(Tenant, tenant_id())
        for m in messages:
            n = sending.accept(s, tenant, sending.SendRequest(
                channel=template.type, template_id=template.id, recipient=m["recipient"],
                personalisation=personalisation, language=form.language.data or None,
                reference=f"console:{g.staff.id}", key_type="live"),
                correlation_id=g.get("correlation_id"), now=now())
            sent.append({"id": n.id, "recipient": n.recipient, "status": n.status})
        audit.record(s, tenant_id=tenant_id(), action="notifications.sent_by_hand",
                     target_type="template", target_id=template.id,
                     after={"count": len(sent), "recipient": [m["recipient"] for m in sent]})
    nudge()
    return render_template("console/send/sent.html", sent=sent, template=template)


