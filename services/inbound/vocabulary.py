"""Where a tenant's keywords are kept: its own words for MISSED, PRYD, CANSLO, ...

``GET /api/keywords`` shows the words in force (the tenant's where set, the
defaults elsewhere) and the fixed opt-out/opt-in words; ``PUT /api/keywords``
replaces the tenant's words, intent by intent (an intent left out goes back
to the defaults; an empty list switches it off, as a health board does with
MISSED).  STOP and START cannot be redefined, and no phrase may mean two things.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from services.inbound import keywords
from services.inbound.models import KeywordSet
from shared.db import utcnow
from shared.errors import ValidationError

MAX_PHRASES = 30
MAX_PHRASE_LENGTH = 40


def configured(session: Session, tenant_id: str) -> dict:
    """The tenant's own words ({} when it uses the defaults throughout)."""
    row = session.get(KeywordSet, tenant_id)
    return dict(row.keywords or {}) if row else {}


def load(session: Session, tenant_id: str) -> keywords.Vocabulary:
    """The lookup table a reply to this tenant is read with."""
    own = configured(session, tenant_id)
    return keywords.vocabulary(own) if own else keywords.DEFAULT_VOCABULARY


def in_force(own: dict) -> dict:
    """{intent: {"cy": [...], "en": [...]}} for every configurable intent."""
    return {intent: own.get(intent, keywords.DEFAULT_KEYWORDS[intent])
            for intent in keywords.CONFIGURABLE}


def fixed() -> dict:
    """The words no tenant can change, by intent and language."""
    out: dict[str, dict[str, list[str]]] = {}
    for word, sense in keywords.FIXED.items():
        out.setdefault(sense.intent, {"cy": [], "en": []})[sense.language or "en"].append(word)
    return out


def validate(proposed: dict) -> dict:
    """The tenant's words, cleaned, or a 400 naming the first bad one."""
    clean: dict[str, dict[str, list[str]]] = {}
    owner: dict[str, str] = {}
    # the defaults of the intents the tenant keeps: a new phrase must not clash with them
    for intent in keywords.CONFIGURABLE:
        if intent not in proposed:
            for phrase in (p for ps in keywords.DEFAULT_KEYWORDS[intent].values() for p in ps):
                owner[keywords.compact(phrase)] = intent
    for intent, by_language in proposed.items():
        if intent in (keywords.STOP, keywords.START):
            raise ValidationError(f"keywords.{intent} cannot be redefined: STOP and START "
                                  "are always honoured first, as the carriers honour them")
        if intent not in keywords.CONFIGURABLE:
            raise ValidationError(f"keywords.{intent} is not a keyword; use "
                                  f"{', '.join(keywords.CONFIGURABLE)}")
        clean[intent] = {}
        for language in ("cy", "en"):
            phrases = by_language.get(language, [])
            if len(phrases) > MAX_PHRASES:
                raise ValidationError(f"keywords.{intent}.{language} may hold at most "
                                      f"{MAX_PHRASES} phrases")
            clean[intent][language] = [
                _phrase(intent, f"keywords.{intent}.{language}[{i}]", raw, owner)
                for i, raw in enumerate(phrases)]
    return clean


def _phrase(intent: str, name: str, raw: str, owner: dict[str, str]) -> str:
    text = keywords.normalise(raw)
    key = keywords.compact(text)
    if not key or len(text) > MAX_PHRASE_LENGTH:
        raise ValidationError(f"{name} must be 1 to {MAX_PHRASE_LENGTH} letters or digits")
    if not any(ch.isalpha() for ch in key):
        raise ValidationError(f"{name} {raw!r} must contain a letter: numbers alone are "
                              "the numbered appointment replies")
    # CANCEL may stand in the cancel words: only ever read with a reference after it
    if key in keywords.FIXED and not (intent == keywords.CANCEL and key == "CANCEL"):
        raise ValidationError(f"{name} {text} is an opt-out or opt-in word and cannot be "
                              "redefined")
    if key in owner and owner[key] != intent:
        raise ValidationError(f"{name} {text} is already a {owner[key]} keyword")
    owner[key] = intent
    return text


def save(session: Session, tenant_id: str, words: dict) -> KeywordSet:
    row = session.get(KeywordSet, tenant_id)
    if row is None:
        row = KeywordSet(tenant_id=tenant_id)
        session.add(row)
    row.keywords = words
    row.updated_at = utcnow()
    return row
