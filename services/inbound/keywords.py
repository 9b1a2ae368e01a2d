"""Where a keyword is understood: a reply's text in, what it asks for out.

Pure functions, no database: the same text always reads the same way.

A reply is a keyword only when the whole message is that word, however it is
typed: ``stop``, ``Stop.``, `` STOP! `` and ``opt-out`` all read as opt-out,
but ``please stop by the office`` does not.  That is how Twilio reads its own
opt-out words, so the platform and the provider agree on what a bare word
means, and a sentence that happens to start with "end" or "quit" never
unsubscribes anyone.

The opt-out words are looked up before any other vocabulary and cannot be
redefined by one: when per-tenant keywords (MISSED, PRYD, ...) arrive they are
passed in as ``vocabulary`` and still never shadow STOP.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

STOP = "stop"
START = "start"
HELP = "help"


class Sense(NamedTuple):
    """What one word means."""

    intent: str
    # "cy" for a Welsh word: whoever texts CYMORTH wants Welsh back.  English
    # control words stay None: Welsh speakers type HELP and STOP too.
    language: str | None = None
    # Twilio acts on this word itself: it blocks or unblocks the number and
    # sends its own confirmation, so we must not send a second one.
    carrier: bool = False


Vocabulary = Mapping[str, Sense]

# Keys are in compact form (see _compact): upper case, no spaces or hyphens.
OPT_OUT: Vocabulary = {
    "STOP": Sense(STOP, carrier=True), "STOPALL": Sense(STOP, carrier=True),
    "UNSUBSCRIBE": Sense(STOP, carrier=True), "CANCEL": Sense(STOP, carrier=True),
    "END": Sense(STOP, carrier=True), "QUIT": Sense(STOP, carrier=True),
    "REVOKE": Sense(STOP, carrier=True), "OPTOUT": Sense(STOP, carrier=True),
    # Welsh: "dim" (none), "stopio", "dad-danysgrifio" (unsubscribe)
    "DIM": Sense(STOP, "cy"), "STOPIO": Sense(STOP, "cy"), "DADDANYSGRIFIO": Sense(STOP, "cy"),
}

BUILT_IN: Vocabulary = {
    "START": Sense(START, carrier=True), "YES": Sense(START, carrier=True),
    "UNSTOP": Sense(START, carrier=True),
    "DECHRAU": Sense(START, "cy"),   # "begin"
    # Help is answered by us (unless Twilio's Advanced Opt-Out says it answered)
    "HELP": Sense(HELP), "INFO": Sense(HELP), "CYMORTH": Sense(HELP, "cy"),
}

_SPACES = re.compile(r"\s+")
# Inside a keyword people write "opt-out", "opt out", "dad danysgrifio", "stop.all"
_JOINERS = re.compile(r"[\s\-_.'’‐‑–—]+")


@dataclass(frozen=True)
class Reading:
    """What a reply says.

    ``text`` is the reply normalised (NFKC, upper case, single spaces, nothing
    but letters and digits at either end), the form later parsers start from;
    ``word`` is the keyword matched, in compact form; ``sense`` what it means;
    ``bare`` says the message was the word and nothing else but surrounding
    white space, which is the only form a carrier can be relied on to act on.
    """

    text: str
    word: str | None = None
    sense: Sense | None = None
    bare: bool = False

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


def _compact(text: str) -> str:
    return _JOINERS.sub("", text)


def parse(body: str, vocabulary: Vocabulary = BUILT_IN) -> Reading:
    """Read a reply.  Never raises, whatever the text."""
    text = normalise(body)
    word = _compact(text)
    for table in (OPT_OUT, vocabulary):
        sense = table.get(word)
        if sense is not None:
            bare = (body or "").strip().upper() == word
            return Reading(text=text, word=word, sense=sense, bare=bare)
    return Reading(text=text)
