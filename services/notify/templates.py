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

PLACEHOLDER = re.compile(r"\(\(([^()?]+?)(\?\?([^()]*))?\)\)")
BILINGUAL_SEPARATOR = {"sms": "\n\n", "email": "\n\n---\n\n"}
FALSY = {"", "no", "false", "0", "n", "na", "nac ydw"}


class MissingPersonalisation(ValueError):
    def __init__(self, names: list[str]):
        super().__init__("Missing personalisation: " + ", ".join(names))
        self.names = names


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def placeholders(text: str) -> list[str]:
    """Placeholder names in order of first appearance (conditional flags included)."""
    seen: dict[str, str] = {}
    for m in PLACEHOLDER.finditer(text or ""):
        seen.setdefault(_norm(m.group(1)), m.group(1).strip())
    return list(seen.values())


def render(text: str, personalisation: dict) -> str:
    values = {_norm(str(k)): v for k, v in (personalisation or {}).items()}
    missing = [name for name in placeholders(text) if _norm(name) not in values]
    if missing:
        raise MissingPersonalisation(missing)

    def sub(m: re.Match) -> str:
        value = values[_norm(m.group(1))]
        if m.group(2):   # conditional: ((flag??text))
            truthy = value if isinstance(value, bool) else str(value).strip().lower() not in FALSY
            return m.group(3) if truthy else ""
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
    body = BILINGUAL_SEPARATOR[kind].join(parts)
    if kind == "sms":
        body = smstext.normalise(body)
    subject = " / ".join(subject_parts) if subject_parts else None
    return Rendered(body=body, subject=subject, language="+".join(langs),
                    sms=smstext.analyse(body) if kind == "sms" else None)


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
