"""Where a reply is answered: the text sent straight back to the citizen.

Language: Welsh when the citizen used a Welsh word (CYMORTH, STOPIO); otherwise
the tenant's default language; where neither is known the answer is bilingual,
Welsh first, as the Welsh Language Standards ask.

The help text names STOP and START, in Welsh too: those two work on every
provider (Twilio blocks and unblocks the number on them), so a citizen who
follows the help text never ends up opted in with us but blocked by the carrier.
"""
from __future__ import annotations

from services.inbound import keywords
from services.inbound.replies import Receipt
from shared.tenancy import Tenant

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
}


def language_for(reading: keywords.Reading, tenant: Tenant) -> str | None:
    """"cy", "en", or None for a bilingual answer."""
    if reading.language in ("cy", "en"):
        return reading.language
    return tenant.default_language if tenant.default_language in ("cy", "en") else None


def render(intent: str, language: str | None, tenant_name: str) -> str:
    """The answer for ``intent`` in ``language``; bilingual, Welsh first, for None."""
    texts = TEXTS[intent]
    if language in texts:
        return texts[language].format(name=tenant_name)
    return "\n\n".join(texts[lang].format(name=tenant_name) for lang in ("cy", "en"))


def answer(tenant: Tenant, receipt: Receipt) -> str | None:
    """The text to send back at once, or None to stay silent."""
    if receipt.provider_answered or receipt.keyword not in TEXTS:
        return None
    reading = receipt.reading
    # Twilio confirms its own words when sent bare; for "Stop." it may not have
    # acted, and if it did, it refuses to deliver our answer anyway (21610).
    carrier_confirms = (receipt.provider == "twilio" and reading.sense is not None
                        and reading.sense.carrier and reading.bare)
    if receipt.keyword in (keywords.STOP, keywords.START) and carrier_confirms:
        return None
    return render(receipt.keyword, language_for(receipt.reading, tenant), tenant.name)
