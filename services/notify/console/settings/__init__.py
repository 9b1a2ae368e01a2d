"""Settings (admins): the council's own OpenID Connect provider for signing in."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import Length, Optional, Regexp

from services.notify.console import Area, audit, db, now, requires, tenant_id
from services.notify.console.forms import PasswordInput, SubmitInput, TextInput
from services.notify.console.models import ConsoleSettings
from shared.tenancy import Tenant

bp = Area("settings", __name__, "/settings", nav=(_l("Settings"), "index", "manage", 88))


class OidcForm(FlaskForm):
    issuer = StringField(_l("Issuer"), widget=TextInput(),
                         description=_l("The address of your council's OpenID Connect provider, "
                                        "for example https://login.example.gov.uk/realms/staff"),
                         validators=[Optional(), Length(max=500), Regexp(
                             r"^https?://[^\s]+$", message=_l("Enter the issuer's web address"))])
    client_id = StringField(_l("Client ID"), widget=TextInput(),
                            validators=[Optional(), Length(max=255)])
    client_secret = PasswordField(_l("Client secret"), widget=PasswordInput(),
                                  description=_l("Leave empty to keep the secret already saved"),
                                  validators=[Optional(), Length(max=500)])
    submit = SubmitField(_l("Save settings"), widget=SubmitInput())


def state(cs: ConsoleSettings | None) -> dict:
    return {"oidc_issuer": cs.oidc_issuer if cs else None,
            "oidc_client_id": cs.oidc_client_id if cs else None,
            "oidc_client_secret": "[set]" if cs and cs.oidc_client_secret else None}


@bp.route("/", methods=["GET", "POST"])
@requires("manage")
def index():
    with db().read() as s:
        cs = s.get(ConsoleSettings, tenant_id())
        slug = s.get(Tenant, tenant_id()).slug
        secret_set = bool(cs and cs.oidc_client_secret)
        form = OidcForm(data={"issuer": cs.oidc_issuer if cs else "",
                              "client_id": cs.oidc_client_id if cs else ""})
    if form.validate_on_submit():
        with db().transaction() as s:
            cs = s.get(ConsoleSettings, tenant_id())
            if cs is None:
                cs = ConsoleSettings(tenant_id=tenant_id(), updated_at=now())
                s.add(cs)
            before = state(cs)
            cs.oidc_issuer = (form.issuer.data or "").strip().rstrip("/") or None
            cs.oidc_client_id = (form.client_id.data or "").strip() or None
            if form.client_secret.data:
                cs.oidc_client_secret = form.client_secret.data
            cs.updated_at = now()
            audit.record(s, tenant_id=tenant_id(), action="settings.sign_in_changed",
                         target_type="console_settings", target_id=tenant_id(), before=before,
                         after=state(cs))
        flash(_("Settings saved"), "success")
        return redirect(url_for(".index"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("console/settings/index.html", form=form, secret_set=secret_set,
                           sign_in_url=url_for("console.sign_in", council=slug, _external=True),
                           callback=url_for("console.oidc_callback", slug=slug,
                                            _external=True)), status
