"""The console: server-rendered pages on notify under ``/console/`` for a council's team.

GOV.UK Frontend (built by ``make console-assets`` into ``static/build``), its Jinja
macros (govuk-frontend-jinja) and WTForms widgets (govuk-frontend-wtf); Welsh and
English from gettext catalogues (flask-babel); every page works without JavaScript.

Each area is a subpackage holding ``bp = Area(...)`` (see :class:`Area`), its
``templates/`` and its own ``translations/`` catalogue; :func:`init_app` finds and
registers every area, so adding one touches no shared file.  Every route declares its
permission (``access.requires``); an undeclared ``/console`` route stops the app from
starting.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import importlib
import logging
import pkgutil
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, g, render_template, request, session
from flask_babel import Babel
from flask_wtf.csrf import CSRFError, CSRFProtect
from govuk_frontend_wtf.main import WTFormsHelpers
from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader

from services.notify.console import access, i18n
from services.notify.console.access import PUBLIC, can, permission_of, public, requires
from shared.db import Database, utcnow
from shared.tenancy import Tenant

__all__ = ["Area", "init_app", "requires", "public", "can", "db", "runtime", "now",
           "tenant_id", "get_or_404"]

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
STATIC = HERE / "static"
COOKIE = "hysbys_console"
PREFIX = "/console"


class Area(Blueprint):
    """One area of the console: ``Area("templates", __name__, "/templates")`` serves
    ``/console/templates/…`` from its package's ``templates/`` folder, with the
    console's HTML error pages."""

    def __init__(self, name: str, import_name: str, url_prefix: str = "", *,
                 nav: tuple | None = None, **kwargs):
        """``nav``: (label, endpoint, permission, order) for the service navigation, the
        label a ``lazy_gettext`` string, e.g. ``(_l("Templates"), "index", "view", 30)``."""
        self.nav = nav
        super().__init__(f"console_{name}" if name != "console" else name, import_name,
                         url_prefix=PREFIX + url_prefix, template_folder="templates", **kwargs)
        for code in (400, 403, 404, 405):
            self.register_error_handler(code, error_page)
        self.register_error_handler(CSRFError, error_page)


def error_page(exc):
    code = getattr(exc, "code", None) or 400
    return render_template("console/error.html", code=code,
                           csrf=isinstance(exc, CSRFError)), code


# -- what a view uses ------------------------------------------------------------------

def runtime():
    return current_app.extensions["hysbys.runtime"]


def db() -> Database:
    return runtime().db


def now() -> dt.datetime:
    """The console's clock (injected in tests: lockout and invitation expiry use it)."""
    return current_app.extensions["hysbys.console"]["clock"]()


def tenant_id() -> str:
    """The signed-in person's tenant: every query a view makes is scoped by it."""
    return g.staff.tenant_id


def get_or_404(sess, model, row_id: str, *, key: str = "id"):
    """``model`` row ``row_id`` of the signed-in tenant, or the 404 an unknown id gets."""
    try:
        row_id = str(uuid.UUID(str(row_id)))
    except ValueError:
        abort(404)
    row = sess.get(model, row_id)
    if row is None or getattr(row, "tenant_id", None) != tenant_id():
        abort(404)
    return row


def nudge() -> None:
    """Wake notify's dispatcher (after the console stored a notification)."""
    current_app.extensions["hysbys.console"]["nudge"]()


# -- set-up ------------------------------------------------------------------------------

def secret_for(settings, purpose: str) -> str:
    return hmac.new(settings.secret_key.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def areas() -> list[str]:
    """The console's area subpackages (each has ``bp``), the core first."""
    names = [m.name for m in pkgutil.iter_modules([str(HERE)]) if m.ispkg]
    return ["core"] + sorted(n for n in names if n != "core")


def init_app(app: Flask, runtime_, *, nudge: Callable[[], None] | None = None,
             clock: Callable[[], dt.datetime] | None = None) -> None:
    settings = runtime_.settings
    app.config.update(
        SECRET_KEY=app.config.get("SECRET_KEY") or secret_for(settings, "hysbys-console-session"),
        SESSION_COOKIE_NAME=COOKIE, SESSION_COOKIE_PATH=PREFIX, SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.public_base_url
                                   and settings.public_base_url.startswith("https")),
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=24),
        WTF_CSRF_CHECK_DEFAULT=False,          # the API is not a browser: only /console is checked
        WTF_CSRF_TIME_LIMIT=None,              # the token lives as long as the session
        BABEL_DEFAULT_LOCALE="en", BABEL_DEFAULT_TIMEZONE="Europe/London",
    )
    app.extensions["hysbys.console"] = {"clock": clock or utcnow, "nudge": nudge or (lambda: None)}
    loaders = [PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja"),
                             "govuk_frontend_wtf": PackageLoader("govuk_frontend_wtf")})]
    app.jinja_loader = ChoiceLoader(([app.jinja_loader] if app.jinja_loader else []) + loaders)
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True
    WTFormsHelpers(app)
    csrf = CSRFProtect(app)
    modules = [importlib.import_module(f"{__name__}.{name}") for name in areas()]
    dirs = [str(Path(m.__file__).parent / "translations") for m in modules
            if (Path(m.__file__).parent / "translations").is_dir()]
    i18n.ensure_compiled(dirs)
    Babel(app, locale_selector=i18n.select_locale, timezone_selector=lambda: "Europe/London",
          default_translation_directories=";".join(dirs))
    i18n.install(app)
    app.jinja_env.globals.update(can=can, console_nav=i18n.navigation)

    for module in modules:
        app.register_blueprint(module.bp)
    app.register_blueprint(Blueprint("console_static", __name__, static_folder=str(STATIC),
                                     static_url_path=PREFIX + "/static"))
    check_declared(app)

    @app.before_request
    def _console_request():
        if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
            return
        from services.notify.console import auth

        g.csp_nonce = secrets.token_urlsafe(16)
        with runtime_.db.transaction(durable=False) as sess:
            user = auth.session_user(sess, session.get("sid"), now())
            if user is not None:
                tenant = sess.get(Tenant, user.tenant_id)
                g.tenant_name = tenant.name if tenant is not None else ""
                if tenant is None or not tenant.active:
                    user = None
                else:
                    sess.expunge(user)
        g.staff = user
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            csrf.protect()

    @app.after_request
    def _console_headers(resp):
        if request.path.startswith(PREFIX):
            nonce = g.get("csp_nonce", "")
            resp.headers.update({
                "Content-Security-Policy": f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
                                           "style-src 'self'; img-src 'self' data:; "
                                           "font-src 'self'; connect-src 'self'; base-uri 'none'; "
                                           "form-action 'self'; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                "Referrer-Policy": "same-origin"})
            if request.endpoint != "console_static.static":
                resp.headers["Cache-Control"] = "no-store"
                resp.vary.add("Cookie")
        return resp

    json_http_error = app.error_handler_spec[None][None].get(
        __import__("werkzeug.exceptions", fromlist=["HTTPException"]).HTTPException)

    @app.errorhandler(404)
    def _not_found(exc):
        if request.path.startswith(PREFIX):
            return error_page(exc)
        return json_http_error(exc) if json_http_error else exc


def console_routes(app: Flask) -> list[tuple[str, str, frozenset[str]]]:
    """Every ``/console`` route: (rule, endpoint, methods), static files left out."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX) and rule.endpoint != "console_static.static":
            out.append((rule.rule, rule.endpoint,
                        frozenset(rule.methods - {"HEAD", "OPTIONS"})))
    return out


def check_declared(app: Flask) -> None:
    missing = [rule for rule, endpoint, _ in console_routes(app)
               if permission_of(app.view_functions[endpoint]) is None]
    if missing:
        raise RuntimeError("console routes without a declared permission (access.requires "
                           f"or access.public): {', '.join(missing)}")


__all__ += ["PUBLIC", "access", "console_routes"]
