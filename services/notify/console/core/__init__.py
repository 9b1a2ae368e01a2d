"""The console's core: signing in and out, the language, accepting an invitation,
the home page and the audit log."""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import InputRequired, Length

from services.notify.console import Area, audit, auth, db, now, oidc, public, requires, tenant_id
from services.notify.console.forms import PasswordInput, SubmitInput, TextInput
from services.notify.console.i18n import LANGUAGES
from services.notify.console.models import StaffUser
from shared.tenancy import tenant_by_slug

log = logging.getLogger(__name__)

bp = Area("console", __name__, nav=[(_l("Home"), "home", "view", 0),
                                    (_l("Audit log"), "audit_log", "view", 90)])


class SignInForm(FlaskForm):
    email = StringField(_l("Email address"), widget=TextInput(),
                        validators=[InputRequired(_l("Enter your email address"))])
    password = PasswordField(_l("Password"), widget=PasswordInput(),
                             validators=[InputRequired(_l("Enter your password"))])
    submit = SubmitField(_l("Sign in"), widget=SubmitInput())


class AcceptForm(FlaskForm):
    name = StringField(_l("Your full name"), widget=TextInput(),
                       validators=[InputRequired(_l("Enter your full name")), Length(max=200)])
    password = PasswordField(_l("Create a password"), widget=PasswordInput(),
                             description=_l("At least 12 characters. A few words you will "
                                            "remember make a good password."),
                             validators=[InputRequired(_l("Enter a password"))])
    submit = SubmitField(_l("Create account"), widget=SubmitInput())


def safe_next(target: str | None) -> str:
    """Only a path inside the console (never another site) to go on to."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/console") \
                and not target.startswith("//") and "\\" not in target:
            return target
    return url_for("console.home")


def sign_in_as(user: StaffUser, sess) -> None:
    """Start a session for ``user``: a new id, the browser's old session dropped."""
    lang = session.get("lang")
    session.clear()                    # no fixation: nothing from before sign-in survives
    session["sid"] = auth.start_session(sess, user, now())
    session["lang"] = lang or user.language
    session.permanent = True


@bp.route("/sign-in", methods=["GET", "POST"])
@public
def sign_in():
    if g.get("staff") is not None and request.method == "GET":
        return redirect(url_for("console.home"))
    form = SignInForm()
    status = 200
    if form.validate_on_submit():
        with db().transaction() as sess:
            result = auth.check_password(sess, form.email.data, form.password.data, now())
            if result.outcome == "ok":
                sign_in_as(result.user, sess)
                audit.record(sess, tenant_id=result.user.tenant_id, action="staff.signed_in",
                             target_type="staff_user", target_id=result.user.id,
                             actor=("staff", result.user.id, result.user.email, "console"))
        if result.outcome == "ok":
            return redirect(safe_next(request.args.get("next")), 303)
        if result.outcome == "locked":
            form.email.errors = [_("Too many wrong passwords: this account is locked. Try again "
                                   "after %(time)s, or ask an admin in your team.",
                                   time=_format_time(result.locked_until))]
            status = 429
        else:
            form.email.errors = [_("The email address or password is wrong")]
            status = 401
    elif request.method == "POST":
        status = 400
    return render_template("console/sign_in.html", form=form,
                           oidc_providers=_oidc_links(request.args.get("council"))), status


def _oidc_links(slug: str | None) -> list[dict]:
    """The council's own sign-in, when the page is opened as /console/sign-in?council=SLUG."""
    if not slug:
        return []
    with db().read() as sess:
        tenant = tenant_by_slug(sess, slug)
        if tenant is None or not tenant.active or oidc.provider_for(sess, tenant.id) is None:
            return []
        return [{"name": tenant.name, "href": url_for("console.oidc_start", slug=slug)}]


def _oidc_provider(slug: str):
    with db().read() as sess:
        tenant = tenant_by_slug(sess, slug)
        provider = oidc.provider_for(sess, tenant.id) if tenant and tenant.active else None
    if provider is None:
        abort(404)
    return tenant, provider


@bp.get("/sign-in/<slug>/oidc")
@public
def oidc_start(slug: str):
    """Off to the council's OpenID Connect provider."""
    _, provider = _oidc_provider(slug)
    callback = url_for("console.oidc_callback", slug=slug, _external=True)
    try:
        url, kept = oidc.start(provider, callback)
    except oidc.OidcError:
        log.warning("oidc: cannot start sign-in for %s", slug, exc_info=True)
        return render_template("console/oidc_failed.html"), 502
    session["oidc"] = {**kept, "slug": slug}
    return redirect(url, 303)


@bp.get("/sign-in/<slug>/oidc/callback")
@public
def oidc_callback(slug: str):
    """Back from the provider: verify, find the invited person, sign them in."""
    tenant, provider = _oidc_provider(slug)
    kept = session.pop("oidc", None) or {}
    if kept.get("slug") != slug:
        kept = {}
    callback = url_for("console.oidc_callback", slug=slug, _external=True)
    try:
        claims = oidc.finish(provider, callback, kept, request.url, request.args.get("state"))
    except oidc.OidcError as exc:
        log.warning("oidc: sign-in for %s refused: %s", slug, exc)
        return render_template("console/oidc_failed.html"), 401
    with db().transaction() as sess:
        user = oidc.match(sess, tenant.id, claims)
        if user is None:
            return render_template("console/oidc_failed.html", no_account=True), 403
        sign_in_as(user, sess)
        audit.record(sess, tenant_id=tenant.id, action="staff.signed_in",
                     target_type="staff_user", target_id=user.id, after={"with": "oidc"},
                     actor=("staff", user.id, user.email, "console"))
    return redirect(url_for("console.home"), 303)


def _format_time(value) -> str:
    from flask_babel import format_time

    return format_time(value, "short")


@bp.post("/sign-out")
@requires("view")
def sign_out():
    with db().transaction() as sess:
        auth.end_session(sess, session.get("sid"))
    lang = session.get("lang")
    session.clear()
    session["lang"] = lang
    flash(_("You have signed out."), "success")
    return redirect(url_for("console.sign_in"), 303)


@bp.get("/language/<code>")
@public
def language(code: str):
    """The Cymraeg / English link: a plain link, so it works without JavaScript."""
    if code not in LANGUAGES:
        abort(404)
    session["lang"] = code
    if g.get("staff") is not None:
        with db().transaction() as sess:
            user = sess.get(StaffUser, g.staff.id)
            user.language = code
    return redirect(safe_next(request.args.get("next")), 303)


@bp.get("/")
@requires("view")
def home():
    return render_template("console/home.html")


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@public
def accept(token: str):
    """Accept an invitation: name and password, then signed in."""
    with db().read() as sess:
        invite = auth.open_invite(sess, token, now())
        if invite is not None:
            sess.expunge(invite)
    if invite is None:
        return render_template("console/invitation_gone.html"), 404
    form = AcceptForm()
    if form.validate_on_submit():
        problem = auth.password_problem(form.password.data, invite.email)
        if problem == "short":
            form.password.errors = [_("Your password must be at least 12 characters long")]
        elif problem:
            form.password.errors = [_("Your password must not be your email address")]
        else:
            with db().transaction() as sess:
                live = auth.open_invite(sess, token, now())     # once only, even if raced
                if live is None:
                    return render_template("console/invitation_gone.html"), 404
                if sess.scalars(sa.select(StaffUser).where(
                        StaffUser.email == live.email)).first() is not None:
                    return render_template("console/invitation_gone.html"), 409
                user = auth.accept_invite(sess, live, name=form.name.data,
                                          password=form.password.data, now=now())
                sess.flush()
                audit.record(sess, tenant_id=user.tenant_id, action="staff.joined",
                             target_type="staff_user", target_id=user.id,
                             after={"email": user.email, "name": user.name, "role": user.role},
                             actor=("staff", user.id, user.email, "console"))
                sign_in_as(user, sess)
            flash(_("Your account is ready. Welcome to Hysbys."), "success")
            return redirect(url_for("console.home"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("console/accept.html", form=form, invite=invite), status


@bp.get("/audit")
@requires("view")
def audit_log():
    """Who changed what, newest first, 50 a page."""
    older_than = request.args.get("older_than", type=int)
    with db().read() as sess:
        entries = audit.page(sess, tenant_id(), older_than=older_than, size=51)
    more = len(entries) > 50
    entries = entries[:50]
    return render_template("console/audit.html", entries=entries,
                           next_page=entries[-1].id if more and entries else None)
