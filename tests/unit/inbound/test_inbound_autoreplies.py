"""The answers sent straight back to a reply, and the language they are in."""
from __future__ import annotations

from services.inbound import autoreplies, keywords


def test_an_answer_in_no_known_language_is_bilingual_welsh_first():
    text = autoreplies.render(keywords.HELP, None, "Bwrdd Iechyd Bae Abertawe")
    welsh, english = text.split("\n\n")
    assert welsh.startswith("Bwrdd Iechyd Bae Abertawe: negeseuon gwasanaeth")
    assert english.startswith("Bwrdd Iechyd Bae Abertawe: these are service messages")


def test_welsh_answers_keep_their_circumflexes():
    assert "â'u" in autoreplies.render(keywords.HELP, "cy", "Cyngor Sir Penfro")


def test_every_answer_exists_in_welsh_and_english():
    for texts in autoreplies.TEXTS.values():
        assert set(texts) == {"cy", "en"}
