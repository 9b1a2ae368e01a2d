"""API keys: create (the secret shown once), list (name, type, last used — never the
secret), revoke.  Admins only."""
from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, SubmitField
from wtforms.validators import InputRequired, Length

from services.notify import tenants
from services.notify.console import Area, audit, db, get_or_404, requires, runtime, tenant_id
from services.notify.console.forms import RadioInput, SubmitInput, TextInput
from services.notify.models import UsageCounter
from shared.tenancy import ApiKey

bp = Area("keys", __name__, "/api-keys", nav=(_l("API keys"), "index", "manage", 85))

TYPE_NAMES = {"live": _l("Live"), "team": _l("Team and guest list"), "test": _l("Test")}
TYPE_HINTS = {"live": _l("Sends to anyone"),
              "team": _l("Sends only to your team's own numbers"),
              "test": _l("Never leaves Hysbys: the simulator answers")}


class KeyForm(FlaskForm):
    name = StringField(_l("Name for this key"), widget=TextInput(),
                       description=_l("For example, the system that will use it"),
                       validators=[InputRequired(_l("Enter a name for the key")), Length(max=100)])
    key_type = RadioField(_l("Type of key"), widget=RadioInput(), choices=[],
                          validators=[InputRequired(_l("Choose a type of key"))])
    submit = SubmitField(_l("Create key"), widget=SubmitInput())

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.key_type.choices = [(t, TYPE_NAMES[t]) for t in ("live", "team", "test")]


def last_used(s, key_ids: list[str]) -> dict:
    """The start of the last minute each key was used in (from the rate-limit counters)."""
    if not key_ids:
        return {}
    return dict(s.execute(sa.select(UsageCounter.subject, sa.func.max(UsageCounter.window_start))
                          .where(UsageCounter.scope == "key-minute",
                                 UsageCounter.subject.in_(key_ids))
                          .group_by(UsageCounter.subject)).all())


@bp.get("/")
@requires("manage")
def index():
    with db().read() as s:
        keys = s.scalars(sa.select(ApiKey).where(ApiKey.tenant_id == tenant_id())
                         .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc())).all()
        used = last_used(s, [k.id for k in keys])
    return render_template("console/keys/index.html", keys=keys, used=used, type_names=TYPE_NAMES)


@bp.route("/new", methods=["GET", "POST"])
@requires("manage")
def create():
    form = KeyForm()
    if form.validate_on_submit():
        with db().transaction() as s:
            key_id, api_key = tenants.create_key(s, runtime().box, tenant_id(), form.name.data.strip(),
                                                 form.key_type.data, [])
            audit.record(s, tenant_id=tenant_id(), action="api_key.created", target_type="api_key",
                         target_id=key_id, after={"name": form.name.data.strip(),
                                                  "key_type": form.key_type.data})
        runtime().relay.nudge.set()
        # shown once, on this response only: never stored in the session or the database in clear
        return render_template("console/keys/created.html", api_key=api_key,
                               name=form.name.data.strip())
    status = 400 if request.method == "POST" else 200
    return render_template("console/keys/new.html", form=form, hints=TYPE_HINTS), status


@bp.post("/<key_id>/revoke")
@requires("manage")
def revoke(key_id: str):
    with db().transaction() as s:
        key = get_or_404(s, ApiKey, key_id)
        name = key.name
        was_live = key.revoked_at is None
        tenants.revoke_key(s, tenant_id(), key.id)
        if was_live:
            audit.record(s, tenant_id=tenant_id(), action="api_key.revoked", target_type="api_key",
                         target_id=key.id, before={"name": name, "revoked": False},
                         after={"name": name, "revoked": True})
    runtime().relay.nudge.set()
    flash(_("Key ‘%(name)s’ revoked: it stopped working at once", name=name), "success")
    return redirect(url_for(".index"), 303)
