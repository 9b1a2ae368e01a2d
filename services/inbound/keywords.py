"""Where a keyword is understood: a reply's text in, what it asks for out.

Pure functions, no database: the same text and vocabulary always read the same way.

A reply is a keyword only when the whole message is that word or phrase,
however it is typed: ``stop``, ``Stop.``, `` STOP! `` and ``opt-out`` all read
as opt-out, but ``please stop by the office`` does not.  That is how Twilio
reads its own opt-out words, so the platform and the provider agree on what a
bare word means, and a sentence that happens to start with "end" or "quit"
never unsubscribes anyone.  Three forms are read beyond the whole message:

* a number alone, ``1`` or ``2``: the answer to "1 to confirm, 2 to rearrange";
* a confirm, cancel or rearrange word followed by a reference, ``CANSLO 4821``:
  an appointment reply that can never collide with Twilio's bare CANCEL;
* a MISSED phrase followed by more words, ``COLLI bin glas``: the rest is the
  citizen's own description of the report.

The opt-out and opt-in words are looked up first, exactly, and cannot be
redefined by a tenant's vocabulary.  Everything else is matched exactly, then
with a small edit distance for words of five letters or more (``MISED``,
``CADARNAU``), unless the typo is as close to an opt-out word: a misspelt
STOP-like word becomes a question for the team, never a guess either way.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from rapidfuzz.distance import DamerauLevenshtein

STOP = "stop"
START = "start"
HELP = "help"
MISSED = "missed"
WHEN = "when"
CONFIRM = "confirm"
CANCEL = "cancel"
REARRANGE = "rearrange"
CYMRAEG = "cymraeg"
ENGLISH = "english"

# What a tenant may configure (STOP and START are the law of the carrier, not ours).
CONFIGURABLE = (HELP, MISSED, WHEN, CONFIRM, CANCEL, REARRANGE, CYMRAEG, ENGLISH)
# A phrase of these may be followed by more words (kept as the description).
TAKES_TEXT = (MISSED,)
# A phrase of these may be followed by an appointment reference.
TAKES_REFERENCE = (CONFIRM, CANCEL, REARRANGE)
# "1 to confirm, 2 to rearrange": a number alone never cancels (a slip of the thumb
# must not lose a clinic slot); cancelling names the appointment, "CANSLO 4821"
NUMBERED = {"1": CONFIRM, "2": REARRANGE}
FUZZY_MIN_LETTERS = 5


class Sense(NamedTuple):
    """What one word means."""

    intent: str
    # the language of the word: "cy" for CYMORTH, PRYD, CANSLO; "en" for HELP, WHEN,
    # CANCEL.  It decides the answer's language only when nothing better is known
    # (the citizen's recorded language, the language of the text they answer).
    language: str | None = None
    # Twilio acts on this word itself: it blocks or unblocks the number and
    # sends its own confirmation, so we must not send a second one.
    carrier: bool = False


Vocabulary = Mapping[str, Sense]

# Keys are in compact form (see compact): upper case, no spaces, hyphens or apostrophes.
OPT_OUT: Vocabulary = {
    "STOP": Sense(STOP, "en", carrier=True), "STOPALL": Sense(STOP, "en", carrier=True),
    "UNSUBSCRIBE": Sense(STOP, "en", carrier=True), "CANCEL": Sense(STOP, "en", carrier=True),
    "END": Sense(STOP, "en", carrier=True), "QUIT": Sense(STOP, "en", carrier=True),
    "REVOKE": Sense(STOP, "en", carrier=True), "OPTOUT": Sense(STOP, "en", carrier=True),
    # Welsh: "dim" (none), "stopio", "dad-danysgrifio" (unsubscribe)
    "DIM": Sense(STOP, "cy"), "STOPIO": Sense(STOP, "cy"), "DADDANYSGRIFIO": Sense(STOP, "cy"),
}

OPT_IN: Vocabulary = {
    "START": Sense(START, "en", carrier=True), "YES": Sense(START, "en", carrier=True),
    "UNSTOP": Sense(START, "en", carrier=True),
    "DECHRAU": Sense(START, "cy"),   # "begin"
}

FIXED: Vocabulary = {**OPT_OUT, **OPT_IN}

# The vocabulary every tenant starts with; ``PUT /api/keywords`` replaces it per intent.
DEFAULT_KEYWORDS: dict[str, dict[str, list[str]]] = {
    HELP: {"en": ["HELP", "INFO"], "cy": ["CYMORTH", "HELPU"]},
    MISSED: {"en": ["MISSED", "MISSED BIN", "MISSED COLLECTION", "BIN MISSED", "NOT COLLECTED"],
             "cy": ["COLLI", "WEDI COLLI", "BIN WEDI'I FETHU", "WEDI'I FETHU", "HEB EI GASGLU",
                    "BIN HEB EI GASGLU", "HEB GASGLU"]},
    WHEN: {"en": ["WHEN", "NEXT", "NEXT COLLECTION", "BIN DAY", "WHEN IS MY BIN DAY"],
           "cy": ["PRYD", "PRYD MAE'R BIN", "DIWRNOD BIN", "CASGLIAD NESAF"]},
    CONFIRM: {"en": ["CONFIRM"], "cy": ["CADARNHAU"]},
    CANCEL: {"en": ["CANCEL"], "cy": ["CANSLO"]},
    REARRANGE: {"en": ["REARRANGE", "RESCHEDULE"], "cy": ["AILDREFNU"]},
    CYMRAEG: {"en": ["WELSH"], "cy": ["CYMRAEG"]},
    ENGLISH: {"en": ["ENGLISH"], "cy": ["SAESNEG"]},
}

_SPACES = re.compile(r"\s+")
# Inside a keyword people write "opt-out", "opt out", "dad danysgrifio", "wedi'i fethu"
_JOINERS = re.compile(r"[\s\-_.'’‘`‐‑–—]+")
# An appointment reference: letters, digits and joiners, with at least one digit
_REFERENCE = re.compile(r"^#?([A-Z0-9][A-Z0-9/-]{0,31})$")


@dataclass(frozen=True)
class Reading:
    """What a reply says.

    ``text`` is the reply normalised (NFKC, upper case, single spaces, nothing
    but letters and digits at either end), the form later parsers start from;
    ``word`` is the keyword matched, in compact form; ``sense`` what it means;
    ``bare`` says the message was the word and nothing else but surrounding
    white space, which is the only form a carrier can be relied on to act on.
    ``reference`` is an appointment reference or reply code typed after
    CONFIRM/CANCEL/REARRANGE, ``numbered`` says the reply was "1" or "2", ``fuzzy``
    that a typo was forgiven.
    """

    text: str
    word: str | None = None
    sense: Sense | None = None
    bare: bool = False
    reference: str | None = None
    numbered: bool = False
    fuzzy: bool = False

    @property
    def intent(self) -> str | None:
        return self.sense.intent if self.sense else None

    @property
    def language(self) -> str | None:
        return self.sense.language if self.sense else None


def normalise(body: str) -> str:
    """Upper case, NFKC, one space between words, no punctuation or symbols around it."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", body or "")).strip()
    start, end = 0, len(text)
    # "STOP!!", "'stop'", "Stop 👍" and "(stop)" are all the word STOP.
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end].upper()


def compact(text: str) -> str:
    """A phrase as a lookup key: ``"Bin wedi'i fethu"`` → ``"BINWEDIIFETHU"``."""
    return _JOINERS.sub("", normalise(text))


def vocabulary(keywords: Mapping[str, Mapping[str, list[str]]] | None = None) -> Vocabulary:
    """The lookup table for a tenant's keywords ({intent: {"cy": [...], "en": [...]}}).

    Intents the tenant has not set keep the defaults; each phrase carries its language.
    """
    table: dict[str, Sense] = {}
    for intent in CONFIGURABLE:
        words = (keywords or {}).get(intent, DEFAULT_KEYWORDS[intent])
        for language in ("en", "cy"):
            for phrase in words.get(language, []):
                key = compact(phrase)
                if key and key not in table:
                    table[key] = Sense(intent, language)
    return table


DEFAULT_VOCABULARY: Vocabulary = vocabulary()


def parse(body: str, words: Vocabulary = DEFAULT_VOCABULARY) -> Reading:
    """Read a reply.  Never raises, whatever the text."""
    text = normalise(body)
    word = _JOINERS.sub("", text)
    bare = (body or "").strip().upper() == word
    sense = FIXED.get(word)
    if sense is not None:
        return Reading(text=text, word=word, sense=sense, bare=bare)
    sense = words.get(word)
    if sense is not None:
        return Reading(text=text, word=word, sense=sense, bare=bare)
    if word in NUMBERED:
        return Reading(text=text, word=word, sense=Sense(NUMBERED[word]), numbered=True)
    return _with_more_words(text, words) or _forgiving_typos(text, word, words) or Reading(text)


def _with_more_words(text: str, words: Vocabulary) -> Reading | None:
    """``CANSLO 4821`` and ``COLLI bin glas``: a phrase at the start, something after it."""
    tokens = text.split(" ")
    for size in range(min(4, len(tokens) - 1), 0, -1):
        head, tail = tokens[:size], tokens[size:]
        key = _JOINERS.sub("", " ".join(head))
        sense, fuzzy = words.get(key), False
        if sense is None and size == 1:
            sense, fuzzy = _closest(key, words), True
        if sense is None:
            continue
        if sense.intent in TAKES_REFERENCE and len(tail) == 1:
            reference = _reference(tail[0])
            if reference:
                return Reading(text=text, word=key, sense=sense, reference=reference, fuzzy=fuzzy)
        if sense.intent in TAKES_TEXT:
            return Reading(text=text, word=key, sense=sense, fuzzy=fuzzy)
    return None


def _forgiving_typos(text: str, word: str, words: Vocabulary) -> Reading | None:
    sense = _closest(word, words)
    return Reading(text=text, word=word, sense=sense, fuzzy=True) if sense else None


def _reference(token: str) -> str | None:
    match = _REFERENCE.match(token.strip(".,:;!?"))
    if match and any(ch.isdigit() for ch in match.group(1)):
        return match.group(1)
    return None


def allowed_edits(word: str) -> int:
    """How many typos a word of this length may carry and still be recognised."""
    letters = sum(ch.isalpha() for ch in word)
    if letters < FUZZY_MIN_LETTERS:
        return 0
    return 1 if letters < 8 else 2


def _closest(word: str, words: Vocabulary) -> Sense | None:
    """The one intent ``word`` is a near miss of, or None when none or several are."""
    edits = allowed_edits(word)
    if edits == 0:
        return None
    if any(_near(word, fixed, edits) for fixed in FIXED):
        return None
    intents = {sense for key, sense in words.items()
               if allowed_edits(key) and _near(word, key, edits)}
    if len({s.intent for s in intents}) != 1:
        return None
    # One intent; if a Welsh and an English spelling are both near, the typo says no language.
    languages = {s.language for s in intents}
    return Sense(intents.pop().intent, languages.pop() if len(languages) == 1 else None)


def _near(word: str, key: str, edits: int) -> bool:
    return DamerauLevenshtein.distance(word, key, score_cutoff=edits) <= edits
