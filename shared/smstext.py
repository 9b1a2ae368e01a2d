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

# Welsh letters as DESIGN.md lists them: the first set is in GSM 03.38 and costs
# nothing extra; the second is kept as written and makes the message UCS-2.
WELSH_GSM = "ÄÉÖÜàäèéìòöùü"
WELSH_UCS2 = "âêîôûŵŷáíóúẃýëïÿẁỳ" + "âêîôûŵŷáíóúẃýëïÿẁỳ".upper()

MAX_CHARACTERS = 918   # GOV.UK Notify's limit: 6 fragments of 153 GSM characters
SINGLE = {"GSM-7": 160, "UCS-2": 70}
MULTI = {"GSM-7": 153, "UCS-2": 67}

_NORMALISE = str.maketrans({
    # quotes and apostrophes
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    # dashes and minus signs
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-",
    "\u2026": "...",
    # spaces that look like a space but cost UCS-2
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ", "\t": " ",
    # invisible characters pasted from word processors: removed
    "\u200b": None, "\u200c": None, "\u200d": None, "\u2060": None, "\ufeff": None,
    "\u00ad": None,
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
    """True when every character is in GSM 03.38 (basic set or extension table)."""
    return all(c in _GSM_BASIC_SET or c in _GSM_EXT_SET for c in text)


def analyse(text: str) -> SmsInfo:
    """Encoding, length in units and fragment count of ``text`` as sent (normalise first)."""
    if is_gsm(text):
        units = sum(2 if c in _GSM_EXT_SET else 1 for c in text)
        encoding = "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        encoding = "UCS-2"
    fragments = fragments_for(units, encoding)
    return SmsInfo(encoding=encoding, characters=len(text), units=units, fragments=fragments)


def fragments_for(units: int, encoding: str) -> int:
    """One fragment up to 160 (70) units; past that, 153 (67) a fragment (the rest is UDH)."""
    if units <= SINGLE[encoding]:
        return 1
    return -(-units // MULTI[encoding])


def too_long(text: str) -> bool:
    """Over GOV.UK Notify's 918 characters (counted as the citizen sees them)."""
    return len(text) > MAX_CHARACTERS
