"""The kernel's input rules (shared.schemas): API text refuses NUL, a citizen's words
from a provider lose their control characters, strict schemas name an unknown field."""
from __future__ import annotations

import pytest
from marshmallow import fields

from shared.errors import ValidationError
from shared.schemas import Lenient, ReceivedText, Strict, Text, load, strip_control_characters


class Inner(Strict):
    cy = Text(required=True)


class TeamInput(Strict):
    name = Text(required=True)
    body = fields.Nested(Inner)


class ProviderWebhook(Lenient):
    body = ReceivedText(load_default="")


def refused(schema, data) -> str:
    with pytest.raises(ValidationError) as err:
        load(schema, data)
    assert err.value.status_code == 400
    return err.value.message


def test_a_nul_in_api_text_is_a_400_naming_the_field():
    assert refused(TeamInput(), {"name": "bin\x00 day"}) == \
        "name must not contain NUL (\\u0000) characters"


def test_a_nul_in_nested_api_text_names_the_field_by_its_path():
    assert refused(TeamInput(), {"name": "n", "body": {"cy": "a\x00"}}) == \
        "body.cy must not contain NUL (\\u0000) characters"


def test_api_text_keeps_every_other_character_as_sent():
    text = "Bore da\tŵyr 👍🏽\r\n\x07"
    assert load(TeamInput(), {"name": text}) == {"name": text}


def test_an_unknown_field_on_a_strict_schema_is_a_400_naming_it_in_notify_s_words():
    assert refused(TeamInput(), {"name": "n", "colour": "red"}) == \
        "Additional properties are not allowed (colour was unexpected)"


def test_every_wrong_field_is_named_in_one_message():
    message = refused(TeamInput(), {"colour": "red", "body": {"cy": "\x00"}})
    assert "name is a required property" in message
    assert "colour was unexpected" in message
    assert "body.cy must not contain NUL" in message


def test_a_citizen_s_words_lose_nul_and_control_characters_but_keep_tabs_and_newlines():
    assert load(ProviderWebhook(), {"body": "bin\x00 glas\x07\x1b\x7f\n\theddiw\r"}) == \
        {"body": "bin glas\n\theddiw\r"}


def test_a_provider_s_unknown_field_is_ignored_not_refused():
    assert load(ProviderWebhook(), {"body": "Diolch", "NumSegments": "1"}) == {"body": "Diolch"}


def test_stripping_keeps_welsh_letters_and_emoji():
    assert strip_control_characters("Tŷ ŵyr 👍🏽\x00") == "Tŷ ŵyr 👍🏽"
