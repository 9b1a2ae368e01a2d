"""Users: the team, invitations by email (sent through notify's own email path), roles,
removal.  Admins only."""
from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, Regexp

from services.notify.console import (
    Area,
    audit,
    auth,
    db,
    get_or_404,
    now,
    nudge,
    requires,
    runtime,
    tenant_id,
)
from services.notify.console.forms import RadioInput, SubmitInput, TextInput
from services.notify.console.models import ROLES, ConsoleSettings, StaffInvite, StaffUser
from services.notify.sending import EMAIL, SendRequest, accept
from services.notify.templates import create_template
from shared.tenancy import Tenant

bp = Area("users", __name__, "/users", nav=(_l("Team"), "index", "manage", 80))

ROLE_NAMES = {"admin": _l("Admin"), "editor": _l("Editor"), "sender": _l("Sender"),
              "viewer": _l("Viewer")}
ROLE_HINTS = {"admin": _l("Everything, including the team, API keys and settings"),
              "editor": _l("Templates, campaigns, subscribers and rounds"),
              "sender": _l("Send messages by hand and answer replies"),
              "viewer": _l("See everything, change nothing")}
INVITE_TEMPLATE = {
    "name": "Hysbys console invitation / Gwahoddiad i gonsol Hysbys", "type": "email",
    "subject": {"cy": "Gwahoddiad i gonsol Hysbys ((council))",
                "en": "Invitation to the ((council)) Hysbys console"},
    "body": {"cy": "Mae ((inviter)) wedi eich gwahodd i gonsol Hysbys ((council)) fel ((role_cy)).\n\n"
                   "Dilynwch y ddolen hon i greu eich cyfrif (mae'n para 3 diwrnod):\n((link))",
             "en": "((inviter)) has invited you to the ((council)) Hysbys console as ((role_en)).\n\n"
                   "Follow this link to create your account (it lasts 3 days):\n((link))"},
}
ROLE_WELSH = {"admin": "gweinyddwr", "editor": "golygydd", "sender": "anfonwr",
              "viewer": "gwyliwr"}


def role_choices():
    return [(r, ROLE_NAMES[r]) for r in ROLES]


class InviteForm(FlaskForm):
    email = StringField(_l("Email address"), widget=TextInput(), validators=[
        InputRequired(_l("Enter an email address")),
        Regexp(EMAIL, message=_l("Enter an email address in the right format, like name@example.gov.uk")),
        Length(max=320)])
    role = RadioField(_l("Role"), widget=RadioInput(), choices=[],
                      validators=[InputRequired(_l("Choose a role"))])
    submit = SubmitField(_l("Send invitation"), widget=SubmitInput())

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.role.choices = role_choices()


class RoleForm(FlaskForm):
    role = RadioField(_l("Role"), widget=RadioInput(), choices=[],
                      validators=[InputRequired(_l("Choose a role"))])
    submit = SubmitField(_l("Save role"), widget=SubmitInput())

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.role.choices = role_choices()


def invite_template_id(sess, tenant: Tenant) -> str:
    """The tenant's invitation template (made the first time it invites someone)."""
    settings = sess.get(ConsoleSettings, tenant.id)
    if settings is None:
        settings = ConsoleSettings(tenant_id=tenant.id, updated_at=now())
        sess.add(settings)
    if settings.invite_template_id is None:
        settings.invite_template_id = create_template(sess, tenant.id, INVITE_TEMPLATE).id
        sess.flush()
    return settings.invite_template_id


def user_state(u: StaffUser) -> dict:
    return {"email": u.email, "name": u.name, "role": u.role}


@bp.get("/")
@requires("manage")
def index():
    with db().read() as s:
        users = s.scalars(sa.select(StaffUser).where(StaffUser.tenant_id == tenant_id())
                          .order_by(StaffUser.name, StaffUser.email)).all()
        invites = s.scalars(sa.select(StaffInvite).where(
            StaffInvite.tenant_id == tenant_id(), StaffInvite.accepted_at.is_(None),
            StaffInvite.revoked_at.is_(None), StaffInvite.expires_at > now())
            .order_by(StaffInvite.created_at.desc())).all()
    return render_template("console/users/index.html", users=users, invites=invites,
                           role_names=ROLE_NAMES)


@bp.route("/invite", methods=["GET", "POST"])
@requires("manage")
def invite():
    form = InviteForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        with db().transaction() as s:
            if s.scalars(sa.select(StaffUser).where(StaffUser.email == email)).first():
                form.email.errors = [_("%(email)s already has an account", email=email)]
            else:
                tenant = s.get(Tenant, tenant_id())
                inv, token = auth.new_invite(s, tenant_id=tenant.id, email=email,
                                             role=form.role.data, invited_by=g.staff.id,
                                             now=now())
                base = runtime().settings.public_base_url or request.host_url
                link = base.rstrip("/") + url_for("console.accept", token=token)
                n = accept(s, tenant, SendRequest(
                    channel="email", template_id=invite_template_id(s, tenant), recipient=email,
                    personalisation={"council": tenant.name, "inviter": g.staff.name,
                                     "role_en": form.role.data, "role_cy": ROLE_WELSH[form.role.data],
                                     "link": link}, urgent=True))
                inv.notification_id = n.id
                audit.record(s, tenant_id=tenant.id, action="staff.invited",
                             target_type="staff_invite", target_id=inv.id,
                             after={"email": email, "role": inv.role})
        if not form.email.errors:
            nudge()
            flash(_("Invitation sent to %(email)s", email=email), "success")
            return redirect(url_for(".index"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("console/users/invite.html", form=form, hints=ROLE_HINTS), status


@bp.route("/<user_id>", methods=["GET", "POST"])
@requires("manage")
def edit(user_id: str):
    form = RoleForm()
    with db().transaction() as s:
        user = get_or_404(s, StaffUser, user_id)
        if request.method == "GET":
            form.role.data = user.role
        elif form.validate_on_submit():
            if user.id == g.staff.id and form.role.data != "admin":
                form.role.errors = [_("You cannot take away your own admin role")]
            else:
                before = user_state(user)
                user.role, user.updated_at = form.role.data, now()
                auth.end_all_sessions(s, user.id)      # the new role applies at once
                audit.record(s, tenant_id=tenant_id(), action="staff.role_changed",
                             target_type="staff_user", target_id=user.id, before=before,
                             after=user_state(user))
                flash(_("%(name)s is now: %(role)s", name=user.name,
                        role=ROLE_NAMES[user.role]), "success")
                return redirect(url_for(".index"), 303)
        s.expunge(user)
    status = 400 if request.method == "POST" else 200
    return render_template("console/users/edit.html", form=form, user=user,
                           hints=ROLE_HINTS), status


@bp.post("/<user_id>/remove")
@requires("manage")
def remove(user_id: str):
    with db().transaction() as s:
        user = get_or_404(s, StaffUser, user_id)
        if user.id == g.staff.id:
            abort(400)
        before = user_state(user)
        auth.end_all_sessions(s, user.id)
        s.delete(user)
        audit.record(s, tenant_id=tenant_id(), action="staff.removed",
                     target_type="staff_user", target_id=user_id, before=before)
    flash(_("%(name)s can no longer sign in", name=before["name"]), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/invitations/<invite_id>/cancel")
@requires("manage")
def cancel(invite_id: str):
    with db().transaction() as s:
        inv = get_or_404(s, StaffInvite, invite_id)
        if inv.revoked_at is None and inv.accepted_at is None:
            inv.revoked_at = now()
            audit.record(s, tenant_id=tenant_id(), action="staff.invitation_cancelled",
                         target_type="staff_invite", target_id=inv.id,
                         before={"email": inv.email, "role": inv.role})
    flash(_("Invitation cancelled"), "success")
    return redirect(url_for(".index"), 303)
