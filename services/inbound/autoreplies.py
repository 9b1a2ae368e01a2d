"""What the citizen is told back, in which language, and by which road.

Two roads.  Twilio's inline TwiML answer is kept for what only makes sense
inline (the STOP/START confirmations, which notify would suppress or race, and
HELP); everything that carries a reference number goes through notify as a
``notification.requested`` event with the tenant's auto-reply template (Welsh
body ``((reply_cy))``, English ``((reply_en))``), so it is counted, suppressed
and rate-limited like any other message.

Language, one rule for every text inbound writes (:func:`choose_language`): the
citizen's recorded language for that tenant (their own CYMRAEG/ENGLISH, else the
subscriber's or patient's language the scheduler holds); else the language of the
message they are replying to; else the language of the keyword they used (PRYD,
COLLI, CANSLO are Welsh; WHEN, MISSED, CANCEL English); else both, Welsh first.
Where the Welsh and the English come out the same, the text is sent once.

Wording: the platform's (:data:`TEXTS`) unless the tenant has its own for that
answer (``PUT /api/reply-texts``, :mod:`services.inbound.reply_texts`); placeholders
are ``{name}`` and the few each answer lists in :data:`PLACEHOLDERS`, substituted
by name (never ``str.format`` on a tenant's text).

The help text names STOP and START, in Welsh too: those two work on every
provider (Twilio blocks and unblocks the number on them), so a citizen who
follows the help text never ends up opted in with us but blocked by the carrier.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from services.inbound import keywords
from shared import events
from shared.tenancy import Tenant

# notification ids of auto-replies: uuid5 of the message id, so a replay asks once
REPLY_NAMESPACE = uuid.UUID("5b0f3c1e-8a52-4f0c-9d0e-6b7c2a1e4d21")
LANGUAGES = ("cy", "en")
LONDON = ZoneInfo("Europe/London")

TEXTS: dict[str, dict[str, str]] = {
    keywords.HELP: {
        "cy": "{name}: negeseuon gwasanaeth yw'r rhain. Tecstiwch STOP i beidio â'u cael, "
              "neu START i'w cael eto.{contact}",
        "en": "{name}: these are service messages. Text STOP to stop them, "
              "or START to get them again.{contact}",
    },
    # Not sent for Twilio's own words, sent bare: Twilio confirms those itself.
    keywords.STOP: {
        "cy": "{name}: ni fyddwch yn cael rhagor o negeseuon gennym. "
              "Tecstiwch DECHRAU i'w cael eto.",
        "en": "{name}: you will get no more messages from us. Text START to get them again.",
    },
    keywords.START: {
        "cy": "{name}: byddwch yn cael ein negeseuon eto. Tecstiwch STOPIO i'w hatal.",
        "en": "{name}: you will get our messages again. Text STOP to stop them.",
    },
    "question": {
        "cy": "{name}: diolch am eich neges. Bydd aelod o'r tîm yn ateb cyn bo hir.",
        "en": "{name}: thank you for your message. A member of the team will reply soon.",
    },
    "missed": {
        "cy": "{name}: diolch, rydym wedi cofnodi nad yw eich bin wedi'i gasglu{where}.",
        "en": "{name}: thank you, we have logged your missed collection{where}.",
    },
    "when": {
        "cy": "{name}: bydd eich casgliad nesaf{what} ddydd {date}.",
        "en": "{name}: your next collection{what} is on {date}.",
    },
    "when_none": {
        "cy": "{name}: nid oes casgliad wedi'i drefnu ar gyfer eich rhif. Tecstiwch eich "
              "cwestiwn a bydd y tîm yn ateb.",
        "en": "{name}: no collection is booked for your number. Text your question and the "
              "team will reply.",
    },
    "when_unavailable": {
        "cy": "{name}: ni allwn weld dyddiad eich casgliad nesaf ar hyn o bryd. Bydd aelod "
              "o'r tîm yn ateb cyn bo hir.",
        "en": "{name}: we cannot see your next collection date just now. A member of the "
              "team will reply soon.",
    },
    "confirm": {
        "cy": "{name}: diolch, mae eich apwyntiad{day} wedi'i gadarnhau.",
        "en": "{name}: thank you, your appointment{day} is confirmed.",
    },
    "cancel": {
        "cy": "{name}: mae eich apwyntiad{day} wedi'i ganslo. Bydd y tîm yn cysylltu i drefnu "
              "un newydd os oes angen.",
        "en": "{name}: your appointment{day} is cancelled. The team will contact you to "
              "rearrange it if needed.",
    },
    "rearrange": {
        "cy": "{name}: diolch, rydym wedi nodi eich bod am aildrefnu eich apwyntiad{day}. "
              "Bydd y tîm yn cysylltu â chi.",
        "en": "{name}: thank you, we have noted that you want to rearrange your "
              "appointment{day}. The team will contact you.",
    },
    "cancel_how": {
        "cy": "{name}: i ganslo eich apwyntiad, tecstiwch CANSLO a'r cod sydd yn eich neges "
              "atgoffa (er enghraifft CANSLO {code}). I'w aildrefnu, atebwch 2.",
        "en": "{name}: to cancel your appointment, text CANCEL and the code in your reminder "
              "(for example CANCEL {code}). To rearrange it, reply 2.",
    },
    "unknown_code": {
        "cy": "{name}: nid ydym yn adnabod y cod {code}, felly nid ydym wedi newid dim. "
              "Gwiriwch y cod yn eich neges atgoffa; bydd aelod o'r tîm yn cysylltu â chi."
              "{contact}",
        "en": "{name}: we did not recognise the code {code}, so nothing has been changed. "
              "Check the code in your reminder; a member of the team will contact you."
              "{contact}",
    },
    "appointment_unavailable": {
        "cy": "{name}: ni allwn weld eich apwyntiadau ar hyn o bryd, felly nid ydym wedi "
              "newid dim. Bydd aelod o'r tîm yn cysylltu â chi.{contact}",
        "en": "{name}: we cannot see your appointments just now, so nothing has been "
              "changed. A member of the team will contact you.{contact}",
    },
    "language_cy": {
        "cy": "{name}: byddwn yn anfon negeseuon atoch yn Gymraeg.",
        "en": "{name}: we will text you in Welsh.",
    },
    "language_en": {
        "cy": "{name}: byddwn yn anfon negeseuon atoch yn Saesneg.",
        "en": "{name}: we will text you in English.",
    },
    "status_closed": {
        "cy": "{name}: mae eich adroddiad {reference} wedi'i gau{notes}",
        "en": "{name}: your report {reference} has been closed{notes}",
    },
    "status_updated": {
        "cy": "{name}: mae eich adroddiad {reference} wedi'i ddiweddaru{notes}",
        "en": "{name}: your report {reference} has been updated{notes}",
    },
}
REFERENCE_LINE = {"cy": " Cyfeirnod: {reference}", "en": " Reference: {reference}"}
# how to reach the team, where the tenant has given its number
CONTACT_LINE = {"cy": " Ffoniwch ni ar {phone}.", "en": " Call us on {phone}."}

# what each answer's text may name besides {name}, {phone}, {contact} and {reference}
COMMON_PLACEHOLDERS = ("name", "phone", "contact", "reference")
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "missed": ("where",), "when": ("what", "date"), "confirm": ("day",), "cancel": ("day",),
    "rearrange": ("day",), "cancel_how": ("code",), "unknown_code": ("code",),
    "status_closed": ("notes",), "status_updated": ("notes",),
}
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# an example code for "CANSLO 1234" when the reminder's own is not known
EXAMPLE_CODE = "1234"


def placeholders(kind: str) -> tuple[str, ...]:
    return COMMON_PLACEHOLDERS + PLACEHOLDERS.get(kind, ())


@dataclass(frozen=True)
class Wording:
    """A tenant's wording: its own texts where set, the platform's elsewhere."""

    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    contact_phone: str | None = None

    def text(self, kind: str, language: str) -> str:
        return (self.texts.get(kind) or {}).get(language) or TEXTS[kind][language]


PLATFORM = Wording()


def fill(text: str, values: Mapping[str, str]) -> str:
    """Put each ``{placeholder}`` of ``values`` in ``text``; anything else stays as written."""
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values
                           else m.group(0), text)


def texts_of(kind: str, tenant_name: str, wording: Wording = PLATFORM,
             reference: str | None = None, **values) -> dict[str, str]:
    """The answer in each language (``{"cy": ..., "en": ...}``), placeholders filled.

    ``values`` may hold per-language pieces as ``{"cy": ..., "en": ...}``; a text
    that does not place ``{reference}`` itself gets the reference line at its end.
    """
    out = {}
    for language in LANGUAGES:
        pieces = {k: (v.get(language, "") if isinstance(v, dict) else v)
                  for k, v in values.items()}
        phone = wording.contact_phone or ""
        pieces.update(name=tenant_name, phone=phone, reference=reference or "",
                      contact=fill(CONTACT_LINE[language], {"phone": phone}) if phone else "")
        pieces.setdefault("code", EXAMPLE_CODE)
        raw = wording.text(kind, language)
        text = fill(raw, pieces)
        if reference and "{reference}" not in raw:
            text += fill(REFERENCE_LINE[language], {"reference": reference})
        out[language] = text
    return out


def one_or_both(texts: Mapping[str, str], language: str | None) -> str:
    """The text in ``language``; for None both, Welsh first, or one where they are the same."""
    if language in LANGUAGES:
        return texts[language]
    if texts["cy"] == texts["en"]:
        return texts["cy"]
    return "\n\n".join(texts[lang] for lang in LANGUAGES)


def choose_language(recorded: str | None, replied_to: str | None,
                    keyword: str | None) -> str | None:
    """The one language rule: "cy", "en", or None for both, Welsh first.

    ``recorded``: the citizen's language for this tenant (their own choice by
    text, else the subscriber's or patient's); ``replied_to``: the language of
    the message they answer ("cy+en", bilingual, says nothing); ``keyword``: the
    language of the word they used.
    """
    for choice in (recorded, replied_to, keyword):
        if choice in LANGUAGES:
            return choice
    return None


WEEKDAYS = {"cy": ("Llun", "Mawrth", "Mercher", "Iau", "Gwener", "Sadwrn", "Sul"),
            "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")}
MONTHS = {"cy": ("Ionawr", "Chwefror", "Mawrth", "Ebrill", "Mai", "Mehefin", "Gorffennaf",
                 "Awst", "Medi", "Hydref", "Tachwedd", "Rhagfyr"),
          "en": ("January", "February", "March", "April", "May", "June", "July", "August",
                 "September", "October", "November", "December")}


def long_date(day: dt.date, language: str) -> str:
    """``Mawrth 1 Rhagfyr`` / ``Tuesday 1 December`` (the Welsh text says "ddydd" before it)."""
    return f"{WEEKDAYS[language][day.weekday()]} {day.day} {MONTHS[language][day.month - 1]}"


def appointment_day(starts_at: dt.datetime | None) -> dict[str, str]:
    """`` ddydd Iau 10 Rhagfyr am 09:30`` / `` on Thursday 10 December at 09:30`` ("" unknown)."""
    if starts_at is None:
        return {"cy": "", "en": ""}
    local = starts_at.astimezone(LONDON)
    return {"cy": f" ddydd {long_date(local.date(), 'cy')} am {local:%H:%M}",
            "en": f" on {long_date(local.date(), 'en')} at {local:%H:%M}"}


def render(kind: str, language: str | None, tenant_name: str,
           wording: Wording = PLATFORM, **values) -> str:
    """The inline answer (no reference) for ``kind`` in ``language``; None: both, Welsh first."""
    return one_or_both(texts_of(kind, tenant_name, wording, **values), language)


def compose(kind: str, tenant_name: str, reference: str | None = None,
            wording: Wording = PLATFORM, **values) -> dict[str, str]:
    """Both languages of an answer, as the auto-reply template's personalisation."""
    texts = texts_of(kind, tenant_name, wording, reference, **values)
    return {f"reply_{language}": texts[language] for language in LANGUAGES}


def reply_requested(tenant: Tenant, to: str, personalisation: dict[str, str],
                    language: str | None, reference: str | None, key: str,
                    cid: str | None = None) -> events.Event | None:
    """``notification.requested`` for one auto-reply, or None when the tenant has no template.

    ``key`` names what is answered (an inbound message id, a status change):
    the notification id is derived from it, so asking twice sends once.  An
    answer whose Welsh and English are the same is asked for in one language, so
    it is sent (and paid for) once.
    """
    template_id = (tenant.config or {}).get("reply_template_id")
    if not template_id:
        return None
    if language not in LANGUAGES and personalisation.get("reply_cy") is not None \
            and personalisation.get("reply_cy") == personalisation.get("reply_en"):
        language = "cy"
    return events.make(
        "notification.requested", tenant.id, cid,
        notification_id=uuid.uuid5(REPLY_NAMESPACE, key), template_id=template_id,
        channel="sms", recipient=to, language=language, personalisation=personalisation,
        reference=reference, urgent=True)


def inline_answer(tenant: Tenant, provider: str, keyword: str | None, reading: keywords.Reading,
                  provider_answered: bool, language: str | None,
                  wording: Wording = PLATFORM) -> str | None:
    """The TwiML text to send back at once, or None to stay silent.

    Only Twilio answers inline; only STOP, START and HELP are answered inline.
    """
    if provider != "twilio" or provider_answered or keyword not in (
            keywords.STOP, keywords.START, keywords.HELP):
        return None
    # Twilio confirms its own words when sent bare; for "Stop." it may not have
    # acted, and if it did, it refuses to deliver our answer anyway (21610).
    carrier_confirms = (reading.sense is not None and reading.sense.carrier and reading.bare)
    if keyword in (keywords.STOP, keywords.START) and carrier_confirms:
        return None
    return render(keyword, language, tenant.name, wording)
