"""What the citizen is told back, in which language, and by which road.

Two roads.  Twilio's inline TwiML answer is kept for what only makes sense
inline (the STOP/START confirmations, which notify would suppress or race, and
HELP); everything that carries a reference number goes through notify as a
``notification.requested`` event with the tenant's auto-reply template (Welsh
body ``((reply_cy))``, English ``((reply_en))``), so it is counted, suppressed
and rate-limited like any other message.

Language: the citizen's own choice (CYMRAEG / ENGLISH) first; then Welsh when
the citizen used a Welsh word (CYMORTH, PRYD); then the tenant's default.

The help text names STOP and START, in Welsh too: those two work on every
provider (Twilio blocks and unblocks the number on them), so a citizen who
follows the help text never ends up opted in with us but blocked by the carrier.
"""
from __future__ import annotations

import datetime as dt
import uuid

from services.inbound import keywords
from shared import events
from shared.tenancy import Tenant

# notification ids of auto-replies: uuid5 of the message id, so a replay asks once
REPLY_NAMESPACE = uuid.UUID("5b0f3c1e-8a52-4f0c-9d0e-6b7c2a1e4d21")

TEXTS: dict[str, dict[str, str]] = {
    keywords.HELP: {
        "cy": "{name}: negeseuon gwasanaeth yw'r rhain. Tecstiwch STOP i beidio â'u cael, "
              "neu START i'w cael eto.",
        "en": "{name}: these are service messages. Text STOP to stop them, "
              "or START to get them again.",
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
        "cy": "{name}: diolch, mae eich apwyntiad wedi'i gadarnhau.",
        "en": "{name}: thank you, your appointment is confirmed.",
    },
    "cancel": {
        "cy": "{name}: mae eich apwyntiad wedi'i ganslo. Bydd y tîm yn cysylltu i drefnu un "
              "newydd os oes angen.",
        "en": "{name}: your appointment is cancelled. The team will contact you to rearrange "
              "it if needed.",
    },
    "cancel_how": {
        "cy": "{name}: i ganslo neu aildrefnu eich apwyntiad, atebwch 2.",
        "en": "{name}: to cancel or rearrange your appointment, reply 2.",
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

WEEKDAYS = {"cy": ("Llun", "Mawrth", "Mercher", "Iau", "Gwener", "Sadwrn", "Sul"),
            "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")}
MONTHS = {"cy": ("Ionawr", "Chwefror", "Mawrth", "Ebrill", "Mai", "Mehefin", "Gorffennaf",
                 "Awst", "Medi", "Hydref", "Tachwedd", "Rhagfyr"),
          "en": ("January", "February", "March", "April", "May", "June", "July", "August",
                 "September", "October", "November", "December")}


def long_date(day: dt.date, language: str) -> str:
    """``Mawrth 1 Rhagfyr`` / ``Tuesday 1 December`` (the Welsh text says "ddydd" before it)."""
    return f"{WEEKDAYS[language][day.weekday()]} {day.day} {MONTHS[language][day.month - 1]}"


def language_for(reading: keywords.Reading, tenant: Tenant, preference: str | None = None
                 ) -> str | None:
    """"cy", "en", or None for a bilingual answer."""
    for choice in (preference, reading.language, tenant.default_language):
        if choice in ("cy", "en"):
            return choice
    return None


def render(intent: str, language: str | None, tenant_name: str) -> str:
    """The inline answer for ``intent`` in ``language``; bilingual, Welsh first, for None."""
    texts = TEXTS[intent]
    if language in texts:
        return texts[language].format(name=tenant_name)
    return "\n\n".join(texts[lang].format(name=tenant_name) for lang in ("cy", "en"))


def compose(kind: str, tenant_name: str, reference: str | None = None, **values) -> dict[str, str]:
    """Both languages of an answer, as the auto-reply template's personalisation.

    ``values`` may hold per-language pieces as ``{"cy": ..., "en": ...}``.
    """
    out = {}
    for language in ("cy", "en"):
        pieces = {k: (v.get(language, "") if isinstance(v, dict) else v)
                  for k, v in values.items()}
        text = TEXTS[kind][language].format(name=tenant_name, reference=reference, **pieces)
        if reference and "{reference}" not in TEXTS[kind][language]:
            text += REFERENCE_LINE[language].format(reference=reference)
        out[f"reply_{language}"] = text
    return out


def reply_requested(tenant: Tenant, to: str, personalisation: dict[str, str],
                    language: str | None, reference: str | None, key: str,
                    cid: str | None = None) -> events.Event | None:
    """``notification.requested`` for one auto-reply, or None when the tenant has no template.

    ``key`` names what is answered (an inbound message id, a status change):
    the notification id is derived from it, so asking twice sends once.
    """
    template_id = (tenant.config or {}).get("reply_template_id")
    if not template_id:
        return None
    return events.make(
        "notification.requested", tenant.id, cid,
        notification_id=uuid.uuid5(REPLY_NAMESPACE, key), template_id=template_id,
        channel="sms", recipient=to, language=language, personalisation=personalisation,
        reference=reference, urgent=True)


def inline_answer(tenant: Tenant, provider: str, keyword: str | None, reading: keywords.Reading,
                  provider_answered: bool, preference: str | None = None) -> str | None:
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
    return render(keyword, language_for(reading, tenant, preference), tenant.name)
