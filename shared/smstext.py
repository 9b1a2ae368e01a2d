"""SMS text rules: encoding, fragments, the 918-character limit, Welsh letters.

GSM 03.38 basic set plus its extension table (which costs two septets).  Welsh
letters outside GSM (â ê î ô û ŵ ŷ …) are kept and switch the message to UCS-2:
a circumflex is never stripped from a Welsh word.  Typographic quotes and dashes
become their GSM forms, since they add nothing but cost a whole encoding.
"""
from __future__ import annotations

from dataclasses import dataclass

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = "^{}\\[~]|€\f"
_GSM_BASIC_SET = frozenset(GSM_BASIC) - {"\x1b"}
_GSM_EXT_SET = frozenset(GSM_EXTENDED)

MAX_CHARACTERS = 918   # GOV.UK Notify's limit: 6 fragments of 153 GSM characters
_NORMALISE = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\t": " ",
})


@dataclass(frozen=True)
class SmsInfo:
    encoding: str          # "GSM-7" or "UCS-2"
    characters: int        # characters as the citizen sees them
    units: int             # septets (GSM-7) or UTF-16 code units (UCS-2)
    fragments: int

    def as_dict(self) -> dict:
        return {"encoding": self.encoding, "characters": self.characters,
                "fragment_count": self.fragments}


def normalise(text: str) -> str:
    """Typographic punctuation to GSM forms; every letter (Welsh included) kept."""
    return text.translate(_NORMALISE)


def is_gsm(text: str) -> bool:
    return all(c in _GSM_BASIC_SET or c in _GSM_EXT_SET for c in text)


def analyse(text: str) -> SmsInfo:
    if is_gsm(text):
        units = sum(2 if c in _GSM_EXT_SET else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    fragments = 1 if units <= single else -(-units // multi)
    return SmsInfo(encoding=encoding, characters=len(text), units=units, fragments=fragments)


def too_long(text: str) -> bool:
    return len(text) > MAX_CHARACTERS
