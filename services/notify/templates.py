"""Rendering bilingual templates with GOV.UK Notify's placeholder syntax.

``((name))`` is replaced by the personalisation value whose key matches ignoring
case, spaces, ``_`` and ``-``; ``((flag??text))`` shows ``text`` when ``flag`` is
truthy.  The recipient's language picks the body; where it is not known the
message is bilingual, Welsh first (Welsh Language Standards).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from services.notify.models import Template, TemplateVersion
from shared import smstext
from shared.db import utcnow
from shared.tenant_cache import StampedCache

PLACEHOLDER = re.compile(r"\(\(([^()?]+?)(\?\?([^()]*))?\)\)")
BILINGUAL_SEPARATOR = {"sms": "\n\n", "email": "\n\n---\n\n"}
# GOV.UK Notify shows ((flag??text)) for these values (notifications-utils' str2bool),
# and we add the Welsh a citizen-facing team would write.
TRUTHY = {"yes", "y", "true", "t", "1", "include", "show", "ie", "oes", "do", "ydw", "ydy"}


SUBJECT_SEPARATOR = " / "


def join_bilingual(parts: list[str], separator: str) -> str:
    """Welsh then English joined by ``separator``; where the two are exactly the same text
    (a name, a date, a code) it is written once, not "X / X" (an SMS would pay twice)."""
    unique = [p for i, p in enumerate(parts) if p not in parts[:i]]
    return separator.join(unique)


class MissingPersonalisation(ValueError):
    def __init__(self, names: list[str]):
        super().__init__("Missing personalisation: " + ", ".join(names))
        self.names = names


def placeholder_key(name: str) -> str:
    """The form two names are compared in: no case, spaces, ``_`` or ``-``."""
    return re.sub(r"[\s_\-]", "", str(name)).lower()


def placeholders(text: str) -> list[str]:
    """Placeholder names in order of first appearance (conditional flags included)."""
    seen: dict[str, str] = {}
    for m in PLACEHOLDER.finditer(text or ""):
        if placeholder_key(m.group(1)):
            seen.setdefault(placeholder_key(m.group(1)), m.group(1).strip())
    return list(seen.values())


def is_truthy(value) -> bool:
    """Whether ``((flag??text))`` shows its text for this value."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUTHY


def render(text: str, personalisation: dict) -> str:
    """``text`` with every placeholder filled; a value of ``None`` counts as missing."""
    values = {placeholder_key(k): v for k, v in (personalisation or {}).items() if v is not None}
    missing = [name for name in placeholders(text) if placeholder_key(name) not in values]
    if missing:
        raise MissingPersonalisation(missing)

    def sub(m: re.Match) -> str:
        key = placeholder_key(m.group(1))
        if not key:
            return m.group(0)   # "(( ))" is text, not a placeholder
        value = values[key]
        if m.group(2):   # conditional: ((flag??text))
            return m.group(3) if is_truthy(value) else ""
        if isinstance(value, list):
            return "\n".join(f"* {v}" for v in value)
        return str(value)

    return PLACEHOLDER.sub(sub, text)


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None
    language: str            # "cy", "en" or "cy+en"
    sms: smstext.SmsInfo | None


def render_message(kind: str, bodies: dict[str, str], subjects: dict[str, str | None],
                   personalisation: dict, language: str | None) -> Rendered:
    """The text a recipient gets: their language's body, or both, Welsh first."""
    langs = [language] if language in ("cy", "en") else ["cy", "en"]
    missing: list[str] = []
    parts: list[str] = []
    subject_parts: list[str] = []
    for lang in langs:
        try:
            parts.append(render(bodies[lang], personalisation).strip())
            if kind == "email" and subjects.get(lang):
                subject_parts.append(render(subjects[lang] or "", personalisation).strip())
        except MissingPersonalisation as exc:
            missing.extend(n for n in exc.names if n not in missing)
    if missing:
        raise MissingPersonalisation(missing)
    body = join_bilingual(parts, BILINGUAL_SEPARATOR[kind])
    if kind == "sms":
        body = smstext.normalise(body)
    subject = join_bilingual(subject_parts, SUBJECT_SEPARATOR) if subject_parts else None
    return Rendered(body=body, subject=subject, language="+".join(langs),
                    sms=smstext.analyse(body) if kind == "sms" else None)


def render_all(kind: str, bodies: dict[str, str], subjects: dict[str, str | None],
               personalisation: dict) -> dict[str, Rendered]:
    """What each kind of recipient gets: Welsh, English, and bilingual (language unknown)."""
    return {"cy": render_message(kind, bodies, subjects, personalisation, "cy"),
            "en": render_message(kind, bodies, subjects, personalisation, "en"),
            "cy+en": render_message(kind, bodies, subjects, personalisation, None)}


def fragment_counts(t, personalisation: dict | None) -> dict[str, dict] | None:
    """What each kind of recipient's text costs (Welsh, English, unknown = both), for the
    scheduler's preview and capacity; None for an email template.  A value the caller
    does not know yet (a subscriber's name) is counted as its placeholder, ``((name))``,
    the length a service team sees in the template."""
    if t.type != "sms":
        return None
    given = {placeholder_key(k) for k in (personalisation or {})}
    values = {**(personalisation or {}), **{name: f"(({name}))" for name in template_placeholders(t)
                                            if placeholder_key(name) not in given}}
    rendered = render_all(t.type, {"en": t.body_en, "cy": t.body_cy},
                          {"en": t.subject_en, "cy": t.subject_cy}, values)
    return {lang: r.sms.as_dict() for lang, r in rendered.items() if r.sms}


def template_placeholders(t) -> list[str]:
    """Every placeholder a template (or one of its versions) needs, in either language."""
    names: dict[str, str] = {}
    for text in (t.body_cy, t.body_en, t.subject_cy, t.subject_en):
        for name in placeholders(text or ""):
            names.setdefault(placeholder_key(name), name)
    return list(names.values())


# -- storage ------------------------------------------------------------------------

def snapshot(t: Template) -> TemplateVersion:
    return TemplateVersion(template_id=t.id, version=t.version, tenant_id=t.tenant_id,
                           name=t.name, type=t.type, body_en=t.body_en, body_cy=t.body_cy,
                           subject_en=t.subject_en, subject_cy=t.subject_cy, created_at=utcnow())


def create_template(session, tenant_id: str, args: dict, created_by: str | None = None
                    ) -> Template:
    subject = args.get("subject") or {}
    t = Template(id=str(uuid.uuid4()), tenant_id=tenant_id, name=args["name"], type=args["type"],
                 version=1, body_en=args["body"]["en"], body_cy=args["body"]["cy"],
                 subject_en=subject.get("en"), subject_cy=subject.get("cy"),
                 created_at=utcnow(), updated_at=utcnow(), created_by=created_by)
    session.add(t)
    session.add(snapshot(t))
    return t


# -- templates between sends ------------------------------------------------------------

class TemplateCache:
    """Templates kept per process, by id, as of one ``(tenant, version)`` stamp, in the
    kernel's bounded, thread-safe :class:`shared.tenant_cache.StampedCache`.

    A send asks the database for the template's current version anyway (one column,
    read in the same statement as the recipient's opt-out: ``api_v2.accept_send``) and
    takes the cached copy only if it is that version; every change to a template's
    content bumps its version (API and console editor), and archiving is part of the
    same query, so the next send in every process uses the new text.  No time-to-live
    and no event are needed.  :meth:`forget` is for a change that keeps the version.
    The tenant is part of the stamp: a template id asked for by another tenant is
    never answered from here."""

    def __init__(self, size: int = 4096):
        self.entries: StampedCache[Template] = StampedCache(size)

    def get(self, template_id: str, tenant_id: str, version: int) -> Template | None:
        return self.entries.get(template_id, (tenant_id, version))

    def put(self, template: Template) -> Template:
        """Keep a copy of ``template`` that belongs to no session, and answer it."""
        copy = Template(**{c.key: getattr(template, c.key) for c in Template.__table__.columns})
        self.entries.put(copy.id, (copy.tenant_id, copy.version), copy)
        return copy

    def forget(self, template_id: str) -> None:
        self.entries.forget(template_id)
