"""Campaigns: set one up step by step, see the dry run, start, pause, resume, read results.

The steps (template, audience, schedule, window, check) are GOV.UK "question pages", one
question a page, the answers kept in the session until the last page creates the
campaign in the scheduler *paused* (``start_paused``): nothing can send before the team
has read the dry run and pressed Start.  Results are the scheduler's delivery figures
per occurrence with replies and opt-outs from notify's own records, drawn as an SVG
chart beside the same numbers in a table.
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, Regexp

from services.notify.console import Area, audit, db, requires, tenant_id
from services.notify.console.audiences import parse_attributes
from services.notify.console.campaigns import dryrun, steps
from services.notify.console.clients import ServiceError, clients, guard
from services.notify.console.forms import RadioInput, SubmitInput, TextArea, TextInput
from services.notify.console.reports import charts
from services.notify.console.reports.queries import replies_and_opt_outs
from services.notify.models import Template

bp = Area("campaigns", __name__, "/campaigns", nav=(_l("Campaigns"), "index", "view", 50))
guard(bp)

DRAFT = "campaign_draft"
TIME = Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", message=_l("Enter a time such as 18:00"))


class StartForm(FlaskForm):
    name = StringField(_l("Campaign name"), widget=TextInput(),
                       validators=[InputRequired(_l("Enter a name")), Length(max=200)])
    kind = RadioField(_l("What kind of campaign"), widget=RadioInput(), choices=[
        ("broadcast", _l("One message, once")),
        ("collection", _l("Collection reminders, before each round's collection")),
        ("appointment", _l("Appointment reminders, before each appointment"))],
        validators=[InputRequired(_l("Choose what kind of campaign"))])
    template = RadioField(_l("Template"), widget=RadioInput(), choices=[],
                          validators=[InputRequired(_l("Choose a template"))])
    submit = SubmitField(_l("Continue"), widget=SubmitInput())


class AudienceForm(FlaskForm):
    audience = TextAreaField(_l("Who it goes to"), widget=TextArea(), description=_l(
        "Attributes subscribers must have, one a line as name = value (for example "
        "ward = Castle). Leave empty for everyone."))
    rounds = StringField(_l("Rounds"), widget=TextInput(), description=_l(
        "For collection reminders: round codes separated by commas; leave empty for every "
        "round"), validators=[Optional()])
    submit = SubmitField(_l("Continue"), widget=SubmitInput())


class ScheduleForm(FlaskForm):
    send_on = StringField(_l("Date"), widget=TextInput(), description=_l(
        "For one message: the day it goes, for example 14/12/2026"), validators=[Optional()])
    send_at = StringField(_l("Time"), widget=TextInput(), description=_l(
        "24-hour clock, for example 10:00 or 18:00"),
        validators=[InputRequired(_l("Enter a time such as 18:00")), TIME])
    days_before = StringField(_l("Days before"), widget=TextInput(), description=_l(
        "Reminders: how many days before the collection or appointment. For appointments, "
        "several separated by commas, for example 7, 1"), validators=[Optional()])
    submit = SubmitField(_l("Continue"), widget=SubmitInput())


class WindowForm(FlaskForm):
    window_start = StringField(_l("Send no earlier than"), widget=TextInput(),
                               validators=[Optional(), TIME])
    window_end = StringField(_l("Send no later than"), widget=TextInput(),
                             validators=[Optional(), TIME])
    submit = SubmitField(_l("Continue"), widget=SubmitInput())


def _templates(sess) -> list[Template]:
    return list(sess.scalars(sa.select(Template).where(
        Template.tenant_id == tenant_id(), Template.archived.is_(False)).order_by(Template.name)))


def _draft() -> dict:
    return dict(session.get(DRAFT) or {})


def _save(draft: dict) -> None:
    session[DRAFT] = draft


def _id_or_404(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        abort(404)


@bp.get("/")
@requires("view")
def index():
    listed = clients().scheduler.campaigns()
    return render_template("console/campaigns/index.html",
                           campaigns=listed.get("campaigns") or [])


@bp.route("/new", methods=["GET", "POST"])
@requires("edit")
def new():
    with db().read() as s:
        found = _templates(s)
        names = {t.id: (t.name, t.type) for t in found}
    form = StartForm(data=_draft() if request.method == "GET" else None)
    form.template.choices = [(tid, f"{name} ({kind.upper()})")
                             for tid, (name, kind) in names.items()]
    if form.validate_on_submit():
        draft = _draft()
        draft.update(name=form.name.data.strip(), kind=form.kind.data,
                     template=form.template.data, channel=names[form.template.data][1],
                     template_name=names[form.template.data][0])
        _save(draft)
        return redirect(url_for(".audience"), 303)
    return render_template("console/campaigns/step.html", form=form, step="start",
                           no_templates=not names), 400 if request.method == "POST" else 200


@bp.route("/new/audience", methods=["GET", "POST"])
@requires("edit")
def audience():
    draft = _draft()
    if "template" not in draft:
        return redirect(url_for(".new"), 303)
    form = AudienceForm(data=draft if request.method == "GET" else None)
    if form.validate_on_submit():
        attrs, bad = parse_attributes(form.audience.data)
        if bad:
            form.audience.errors = [_("Line %(lines)s is not name = value",
                                      lines=", ".join(map(str, bad)))]
        else:
            draft.update(audience=form.audience.data or "", audience_filter=attrs,
                         rounds=form.rounds.data or "")
            _save(draft)
            return redirect(url_for(".schedule"), 303)
    return render_template("console/campaigns/step.html", form=form, step="audience"), (
        400 if request.method == "POST" else 200)


@bp.route("/new/schedule", methods=["GET", "POST"])
@requires("edit")
def schedule():
    draft = _draft()
    if "template" not in draft:
        return redirect(url_for(".new"), 303)
    form = ScheduleForm(data=draft if request.method == "GET" else None)
    if form.validate_on_submit():
        problem = steps.schedule_problem(draft["kind"], form.send_on.data,
                                         form.days_before.data)
        if problem:
            getattr(form, problem[0]).errors = [problem[1]]
        else:
            draft.update(send_on=form.send_on.data or "", send_at=form.send_at.data,
                         days_before=form.days_before.data or "")
            _save(draft)
            return redirect(url_for(".window"), 303)
    return render_template("console/campaigns/step.html", form=form, step="schedule",
                           kind=draft["kind"]), 400 if request.method == "POST" else 200


@bp.route("/new/window", methods=["GET", "POST"])
@requires("edit")
def window():
    draft = _draft()
    if "send_at" not in draft:
        return redirect(url_for(".schedule"), 303)
    form = WindowForm(data=draft if request.method == "GET" else None)
    if form.validate_on_submit():
        if bool(form.window_start.data) != bool(form.window_end.data):
            form.window_end.errors = [_("Enter both times, or neither")]
        else:
            draft.update(window_start=form.window_start.data or "",
                         window_end=form.window_end.data or "")
            _save(draft)
            return redirect(url_for(".check"), 303)
    return render_template("console/campaigns/step.html", form=form, step="window"), (
        400 if request.method == "POST" else 200)


@bp.route("/new/check", methods=["GET", "POST"])
@requires("edit")
def check():
    draft = _draft()
    if "window_start" not in draft:
        return redirect(url_for(".window"), 303)
    with db().read() as s:
        template = s.get(Template, draft["template"])
        if template is None or template.tenant_id != tenant_id():
            return redirect(url_for(".new"), 303)
        fragments = steps.template_fragments(template)
    body = steps.campaign_body(draft, fragments)
    problems: list[str] = []
    if request.method == "POST":
        if not FlaskForm().validate_on_submit():
            abort(400)
        try:
            created = clients().scheduler.create_campaign(body)
        except ServiceError as exc:
            if exc.status not in (400, 409):
                raise
            problems = exc.messages
        else:
            with db().transaction() as s:
                audit.record(s, tenant_id=tenant_id(), action="campaign.created",
                             target_type="campaign", target_id=created["id"], after=body)
            session.pop(DRAFT, None)
            flash(_("The campaign is set up and paused. Check the dry run, then start it."),
                  "success")
            return redirect(url_for(".dry_run", campaign_id=created["id"]), 303)
    return render_template("console/campaigns/check.html", draft=draft, body=body,
                           fragments=fragments, problems=problems), 400 if problems else 200


@bp.get("/<campaign_id>")
@requires("view")
def detail(campaign_id: str):
    c = clients().scheduler.campaign(_id_or_404(campaign_id))
    with db().read() as s:
        extra = replies_and_opt_outs(s, tenant_id(), c["id"])
        template = s.get(Template, c.get("template_id") or "")
        template_name = template.name if template and template.tenant_id == tenant_id() else None
    rows = steps.results(c, extra)
    series = [charts.Series("delivered", _("Delivered"), charts.GREEN),
              charts.Series("failed", _("Failed"), charts.RED),
              charts.Series("replies", _("Replies"), charts.BLUE),
              charts.Series("opt_outs", _("Opt-outs"), charts.ORANGE)]
    chart = charts.bar_chart([(r["label"], r) for r in rows if r["requested"]], series,
                             title=_("Results of each send"),
                             desc=_("Messages delivered and failed, replies and opt-outs, for "
                                    "each time the campaign sent. The same numbers are in the "
                                    "table below."), ident="campaign-results") if any(
        r["requested"] for r in rows) else None
    return render_template("console/campaigns/detail.html", c=c, rows=rows, chart=chart,
                           template_name=template_name, totals=steps.totals(rows))


@bp.get("/<campaign_id>/dry-run")
@requires("view")
def dry_run(campaign_id: str):
    api = clients().scheduler
    cid = _id_or_404(campaign_id)
    c = api.campaign(cid)
    preview = api.preview(cid, limit=10)
    with db().read() as s:
        template = s.get(Template, c.get("template_id") or "")
        if template is not None and template.tenant_id != tenant_id():
            template = None
        run = dryrun.summarise(preview, template, c.get("channel", "sms"))
    return render_template("console/campaigns/dry_run.html", c=c, run=run,
                           fragments_warning=dryrun.fragments_warning(run))


@bp.post("/<campaign_id>/pause")
@requires("edit")
def pause(campaign_id: str):
    return _act(campaign_id, "pause")


@bp.post("/<campaign_id>/resume")
@requires("edit")
def resume(campaign_id: str):
    """Start a campaign set up paused, or resume a paused one."""
    return _act(campaign_id, "resume")


def _act(campaign_id: str, action: str):
    cid = _id_or_404(campaign_id)
    api = clients().scheduler
    before = api.campaign(cid)
    try:
        after = api.campaign_action(cid, action)
    except ServiceError as exc:
        if exc.status != 409:
            raise
        flash(" ".join(exc.messages), "info")
        return redirect(url_for(".detail", campaign_id=cid), 303)
    with db().transaction() as s:
        audit.record(s, tenant_id=tenant_id(), action=f"campaign.{action}d",
                     target_type="campaign", target_id=cid,
                     before={"status": before.get("status")},
                     after={"status": after.get("status")})
    flash(_("The campaign is paused: nothing more is sent until you resume it.")
          if action == "pause" else _("The campaign is running."), "success")
    return redirect(url_for(".detail", campaign_id=cid), 303)


