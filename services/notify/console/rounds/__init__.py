"""Rounds and collections: the scheduler's collection rounds, through its API.

Each round's rule in words in the page's language ("every other Tuesday", "bob yn ail
ddydd Mawrth"), its next dates, its bank-holiday and Christmas changes, and a calendar
of the next eight weeks.  An editor sets a round up from plain choices (how often, which
day, the first date) — the RFC 5545 rule is built for them — and loads a holiday change
("collections due 25 December go on 27 December").
"""
from __future__ import annotations

import datetime as dt
import re

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, Optional, Regexp

from services.notify.console import Area, audit, db, now, requires, tenant_id
from services.notify.console.clients import ServiceError, clients, guard
from services.notify.console.forms import RadioInput, SubmitInput, TextInput
from services.notify.console.i18n import language, today_in_london
from services.notify.console.rounds import weeks
from services.notify.console.rounds.words import CODES, describe

bp = Area("rounds", __name__, "/rounds", nav=(_l("Rounds"), "index", "view", 45))
guard(bp)

FREQUENCIES = {"1": "FREQ=WEEKLY", "2": "FREQ=WEEKLY;INTERVAL=2", "3": "FREQ=WEEKLY;INTERVAL=3",
               "4": "FREQ=WEEKLY;INTERVAL=4"}
DAY_NAMES = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"),
             _l("Saturday"), _l("Sunday"))
DATE_HINT = _l("For example, 5/1/2027")


def parse_day(text: str | None) -> dt.date | None:
    """``2027-01-05`` or ``5/1/2027`` (day first, as people in Wales write it); None if neither."""
    text = (text or "").strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text)
        m = re.fullmatch(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})", text)
        if m:
            return dt.date(int(m[3]), int(m[2]), int(m[1]))
    except ValueError:
        return None
    return None


class RoundForm(FlaskForm):
    code = StringField(_l("Round code"), widget=TextInput(),
                       description=_l("As in your subscribers' round column, for example A or "
                                      "TUESDAY-2"),
                       validators=[InputRequired(_l("Enter the round's code")),
                                   Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                                          message=_l("Use letters, digits, - _ or . only"))])
    name = StringField(_l("Name"), widget=TextInput(),
                       validators=[Optional(), Length(max=200)])
    frequency = RadioField(_l("How often"), widget=RadioInput(),
                           choices=[("1", _l("Every week")), ("2", _l("Every other week")),
                                    ("3", _l("Every three weeks")),
                                    ("4", _l("Every four weeks"))],
                           validators=[InputRequired(_l("Choose how often"))])
    day = RadioField(_l("Collection day"), widget=RadioInput(),
                     choices=list(zip(CODES, DAY_NAMES, strict=True)),
                     validators=[InputRequired(_l("Choose the collection day"))])
    first = StringField(_l("First collection date"), widget=TextInput(), description=DATE_HINT,
                        validators=[InputRequired(_l("Enter the first collection date"))])
    submit = SubmitField(_l("Save round"), widget=SubmitInput())


class ChangeForm(FlaskForm):
    day_from = StringField(_l("Collections due on"), widget=TextInput(), description=DATE_HINT,
                           validators=[InputRequired(_l("Enter the date collections were due"))])
    day_to = StringField(_l("Move them to"), widget=TextInput(),
                         description=_l("Leave empty if there is no collection that day"),
                         validators=[Optional()])
    rounds = StringField(_l("Rounds"), widget=TextInput(),
                         description=_l("Round codes separated by commas; leave empty for "
                                        "every round collecting that day"),
                         validators=[Optional()])
    submit = SubmitField(_l("Save change"), widget=SubmitInput())


def _today() -> dt.date:
    return today_in_london(now())


def _words(r: dict) -> str:
    """The rule in words, and (for the templates) its dates as dates."""
    r["start_date"] = dt.date.fromisoformat(r["start"])
    for u in r.get("upcoming") or []:
        u["day"] = dt.date.fromisoformat(u["date"])
    return describe(r.get("rrule", ""), r["start_date"], language())


@bp.get("/")
@requires("view")
def index():
    today = _today()
    listed = clients().scheduler.rounds(until=weeks.last_day(today).isoformat())["rounds"]
    for r in listed:
        r["words"] = _words(r)
        r["changes"] = weeks.changes(r)
    return render_template("console/rounds/index.html", rounds=listed, today=today)


@bp.get("/calendar")
@requires("view")
def calendar():
    today = _today()
    listed = clients().scheduler.rounds(until=weeks.last_day(today).isoformat())["rounds"]
    return render_template("console/rounds/calendar.html", weeks=weeks.calendar(listed, today),
                           rounds=listed, today=today)


@bp.get("/round/<round_code>")
@requires("view")
def detail(round_code: str):
    today = _today()
    r = clients().scheduler.round(round_code, until=weeks.last_day(today).isoformat())
    r["words"] = _words(r)
    r["words_other"] = describe(r.get("rrule", ""), dt.date.fromisoformat(r["start"]),
                                "en" if language() == "cy" else "cy")
    return render_template("console/rounds/detail.html", r=r, changes=weeks.changes(r),
                           weeks=weeks.calendar([r], today), today=today)


@bp.route("/new", methods=["GET", "POST"])
@requires("edit")
def new():
    form = RoundForm()
    if form.validate_on_submit():
        first = parse_day(form.first.data)
        if first is None:
            form.first.errors = [_("Enter a real date, for example 5/1/2027")]
        else:
            body = {"code": form.code.data.strip(), "start": first.isoformat(),
                    "rrule": f"{FREQUENCIES[form.frequency.data]};BYDAY={form.day.data}"}
            if form.name.data:
                body["name"] = form.name.data.strip()
            try:
                saved = clients().scheduler.put_round(body)
            except ServiceError as exc:
                if exc.status != 400:
                    raise
                form.code.errors = exc.messages
            else:
                with db().transaction() as s:
                    audit.record(s, tenant_id=tenant_id(), action="round.saved",
                                 target_type="round", target_id=saved.get("code"), after=body)
                flash(_("Round %(code)s is saved.", code=saved.get("code")), "success")
                return redirect(url_for(".detail", round_code=saved["code"]), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("console/rounds/new.html", form=form), status


@bp.route("/changes", methods=["GET", "POST"])
@requires("edit")
def changes():
    """A bank holiday or Christmas change: collections due one day go on another (or not)."""
    form = ChangeForm()
    if form.validate_on_submit():
        day_from = parse_day(form.day_from.data)
        day_to = parse_day(form.day_to.data) if form.day_to.data else None
        if day_from is None:
            form.day_from.errors = [_("Enter a real date, for example 25/12/2026")]
        elif form.day_to.data and day_to is None:
            form.day_to.errors = [_("Enter a real date, for example 27/12/2026")]
        else:
            change: dict = {"from": day_from.isoformat(),
                            "to": day_to.isoformat() if day_to else None}
            codes = [c.strip() for c in (form.rounds.data or "").split(",") if c.strip()]
            if codes:
                change["rounds"] = codes
            result = clients().scheduler.round_changes([change])
            if result.get("errors"):
                form.day_from.errors = [e.get("reason", "") for e in result["errors"]]
            else:
                applied = [c for a in result.get("applied") or [] for c in a.get("rounds") or []]
                with db().transaction() as s:
                    audit.record(s, tenant_id=tenant_id(), action="round.changed",
                                 target_type="round", target_id=",".join(applied) or None,
                                 after=change)
                if applied:
                    flash(_("The change is saved for rounds %(codes)s.",
                            codes=", ".join(applied)), "success")
                else:
                    flash(_("No round collects on that day: nothing was changed."), "info")
                return redirect(url_for(".index"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("console/rounds/changes.html", form=form), status
