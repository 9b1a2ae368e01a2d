"""Where a tenant's own wording of the auto-replies is kept, checked and previewed.

``GET /api/reply-texts`` shows the wording in force (the tenant's where set, the
platform's elsewhere), which answers are the tenant's own, and a preview of each
in each language: the text as a citizen would get it, its encoding (GSM-7, or
UCS-2 and the letters that cause it) and its fragment count.  ``PUT`` replaces
the tenant's texts, answer by answer (an answer left out goes back to the
platform's wording), with the council's or clinic's ``contact_phone`` that HELP and
the unknown-code answer name.  ``POST /api/reply-texts/preview`` shows a proposed
set without saving it.

Each answer is given in both languages (the Welsh Language Standards ask for
Welsh of the same quality as the English); its placeholders are the ones
:data:`~services.inbound.autoreplies.PLACEHOLDERS` lists for it, and a text must
fit, with the reference line, in :data:`MAX_CHARACTERS`.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from services.inbound import autoreplies
from services.inbound.models import ReplyTextSet
from shared import smstext
from shared.db import utcnow
from shared.errors import ValidationError

# three GSM fragments; a Welsh UCS-2 text of this length is six (the SMS maximum is 918)
MAX_CHARACTERS = 459
MAX_PHONE = 32
SAMPLE_REFERENCE = "HYS-ABC234"
# what the preview fills the placeholders with
SAMPLES = {
    "where": {"cy": " (1 Stryd Fawr, Hwlffordd)", "en": " (1 Stryd Fawr, Hwlffordd)"},
    "what": {"cy": " (ailgylchu)", "en": " (recycling)"},
    "date": {"cy": "Mawrth 1 Rhagfyr", "en": "Tuesday 1 December"},
    "day": autoreplies.appointment_day(dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC)),
    "code": "4821",
    "notes": {"cy": ": bin newydd ddydd Llun", "en": ": a new bin on Monday"},
}
# answers with no reference line (inline on Twilio)
INLINE = ("help", "stop", "start")


def load(session: Session, tenant_id: str) -> autoreplies.Wording:
    """The wording a reply to this tenant is answered with."""
    row = session.get(ReplyTextSet, tenant_id)
    if row is None:
        return autoreplies.PLATFORM
    return autoreplies.Wording(dict(row.texts or {}), row.contact_phone)


def in_force(wording: autoreplies.Wording) -> dict:
    """{kind: {"cy", "en"}} for every answer."""
    return {kind: {lang: wording.text(kind, lang) for lang in autoreplies.LANGUAGES}
            for kind in autoreplies.TEXTS}


def validate(texts: dict, contact_phone: str | None) -> autoreplies.Wording:
    """The tenant's texts, checked, or a 400 naming the first bad one."""
    if contact_phone is not None:
        contact_phone = contact_phone.strip() or None
        if contact_phone and (len(contact_phone) > MAX_PHONE
                              or not any(ch.isdigit() for ch in contact_phone)):
            raise ValidationError(f"contact_phone must be a phone number of at most "
                                  f"{MAX_PHONE} characters")
    clean: dict[str, dict[str, str]] = {}
    for kind, by_language in texts.items():
        if kind not in autoreplies.TEXTS:
            raise ValidationError(f"texts.{kind} is not an answer; use "
                                  f"{', '.join(autoreplies.TEXTS)}")
        if not isinstance(by_language, dict):
            raise ValidationError(f"texts.{kind} must be {{\"cy\": ..., \"en\": ...}}")
        unknown = set(by_language) - set(autoreplies.LANGUAGES)
        if unknown:
            raise ValidationError(f"texts.{kind}.{sorted(unknown)[0]} is not a language; "
                                  "use cy and en")
        clean[kind] = {}
        for language in autoreplies.LANGUAGES:
            clean[kind][language] = _text(kind, language, by_language.get(language))
    wording = autoreplies.Wording(clean, contact_phone)
    for kind in clean:
        for language, text in preview_texts(wording, kind).items():
            if len(text) > MAX_CHARACTERS and language in autoreplies.LANGUAGES:
                raise ValidationError(f"texts.{kind}.{language} comes to {len(text)} "
                                      f"characters with its values; at most {MAX_CHARACTERS}")
    return wording


def _text(kind: str, language: str, raw) -> str:
    name = f"texts.{kind}.{language}"
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError(f"{name} is required: each answer is given in Welsh and English")
    text = smstext.normalise(raw.strip())
    allowed = autoreplies.placeholders(kind)
    for placeholder in autoreplies.PLACEHOLDER.findall(text):
        if placeholder not in allowed:
            raise ValidationError(f"{name} has {{{placeholder}}}, which is not a placeholder "
                                  f"of {kind}; use {', '.join('{' + p + '}' for p in allowed)}")
    if any(ord(ch) < 32 and ch != "\n" for ch in text):
        raise ValidationError(f"{name} must not contain control characters")
    return text


def save(session: Session, tenant_id: str, wording: autoreplies.Wording) -> ReplyTextSet:
    row = session.get(ReplyTextSet, tenant_id)
    if row is None:
        row = ReplyTextSet(tenant_id=tenant_id)
        session.add(row)
    row.texts = {k: dict(v) for k, v in wording.texts.items()}
    row.contact_phone = wording.contact_phone
    row.updated_at = utcnow()
    return row


def preview_texts(wording: autoreplies.Wording, kind: str, tenant_name: str = "Cyngor Sir Penfro"
                  ) -> dict[str, str]:
    """The answer as sent: "cy", "en" and "cy+en" (both, Welsh first; once if the same)."""
    reference = None if kind in INLINE else SAMPLE_REFERENCE
    texts = autoreplies.texts_of(kind, tenant_name, wording, reference, **SAMPLES)
    texts = {lang: smstext.normalise(text) for lang, text in texts.items()}
    return {**texts, "cy+en": autoreplies.one_or_both(texts, None)}


def measure(text: str) -> dict:
    """Encoding, fragments, and the characters that make it UCS-2 (Welsh ones named apart)."""
    info = smstext.analyse(text)
    causes = [ch for ch in dict.fromkeys(text) if not smstext.is_gsm(ch)]
    return {"text": text, **info.as_dict(),
            "ucs2_welsh_letters": [ch for ch in causes if ch in smstext.WELSH_UCS2],
            "ucs2_characters": causes}


def preview(wording: autoreplies.Wording, tenant_name: str) -> dict:
    """{kind: {"cy": measure, "en": measure, "cy+en": measure}} for every answer."""
    return {kind: {lang: measure(text) for lang, text in
                   preview_texts(wording, kind, tenant_name).items()}
            for kind in autoreplies.TEXTS}


def body(wording: autoreplies.Wording, tenant_name: str) -> dict:
    return {"texts": in_force(wording), "customised": sorted(wording.texts),
            "contact_phone": wording.contact_phone,
            "placeholders": {kind: list(autoreplies.placeholders(kind))
                             for kind in autoreplies.TEXTS},
            "preview": preview(wording, tenant_name)}
