"""Welsh and English: choosing the language, the catalogues, dates and numbers.

The language is the one the person chose with the Cymraeg / English link (kept in
their session and on their account), else their browser's preference between ``cy``
and ``en``, else English.  Every area keeps its own catalogue
(``<area>/translations/cy/LC_MESSAGES/messages.po``) so areas can be added without
touching one shared file; flask-babel merges them.  ``.mo`` files are compiled by
``make console-assets`` and, if one is missing or older than its ``.po``, when the
app starts.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, g, request, session, url_for
from flask_babel import format_date, format_datetime, format_decimal, get_locale

log = logging.getLogger(__name__)
LANGUAGES = ("cy", "en")
HTML_LANG = {"cy": "cy", "en": "en-GB"}


BABEL_LOCALE = {"cy": "cy", "en": "en_GB"}     # British English dates: 3 Dec 2026, 24-hour


def select_locale() -> str:
    return BABEL_LOCALE[_choose()]


def _choose() -> str:
    chosen = session.get("lang") if request else None
    if chosen in LANGUAGES:
        return chosen
    staff = g.get("staff")
    if staff is not None and staff.language in LANGUAGES:
        return staff.language
    return (request.accept_languages.best_match(LANGUAGES) if request else None) or "en"


def language() -> str:
    """``cy`` or ``en``: the page's language."""
    return "cy" if str(get_locale() or "en").startswith("cy") else "en"


def ensure_compiled(dirs: list[str]) -> None:
    """Compile each ``messages.po`` to ``.mo`` where the ``.mo`` is missing or stale."""
    for d in dirs:
        for po in Path(d).glob("*/LC_MESSAGES/messages.po"):
            mo = po.with_suffix(".mo")
            if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
                continue
            try:
                compile_po(po, mo)
            except OSError:
                log.warning("cannot write %s: run make console-assets", mo)


def compile_po(po: Path, mo: Path) -> None:
    with po.open("rb") as f:
        catalog = read_po(f, locale=po.parent.parent.name)
    with mo.open("wb") as f:
        write_mo(f, catalog, use_fuzzy=False)


def install(app: Flask) -> None:
    """Template filters and globals for the chosen language."""

    @app.template_filter("date")
    def _date(value, fmt: str = "long"):
        return "" if value is None else format_date(value, fmt)

    @app.template_filter("datetime")
    def _datetime(value, fmt: str = "medium"):
        return "" if value is None else format_datetime(value, fmt)

    @app.template_filter("number")
    def _number(value, fmt: str | None = None):
        return "" if value is None else format_decimal(value, fmt)

    @app.context_processor
    def _language():
        lang = language()
        other = "en" if lang == "cy" else "cy"
        here = request.full_path.rstrip("?") if request else "/console/"
        return {"lang": lang, "html_lang": HTML_LANG[lang], "other_lang": other,
                "switch_url": url_for("console.language", code=other, next=here),
                "csp_nonce": g.get("csp_nonce"), "staff": g.get("staff"),
                "tenant_name": g.get("tenant_name")}


def navigation() -> list[dict]:
    """The service navigation for the signed-in person: the areas their role may open."""
    from services.notify.console.access import can

    items = []
    for bp in current_app.blueprints.values():
        navs = getattr(bp, "nav", None) or []
        for nav in [navs] if isinstance(navs, tuple) else navs:
            if can(nav[2]):
                endpoint = f"{bp.name}.{nav[1]}"
                items.append({"order": nav[3], "text": str(nav[0]), "href": url_for(endpoint),
                              "active": request.endpoint == endpoint or (
                                  request.blueprint == bp.name and len(navs) == 4
                                  and isinstance(navs, tuple))})
    return sorted(items, key=lambda i: i["order"])


def today_in_london(now: dt.datetime) -> dt.date:
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo("Europe/London")).date()
