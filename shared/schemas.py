"""The marshmallow pieces every service reads its HTTP input with (one validation library).

One rule for text on the whole platform (docs/decisions.md, "NUL in text"):

* :class:`Text` is what a service team, a member of staff or another service sends
  through an API: a NUL character (which PostgreSQL's ``text`` cannot store) is a 400
  naming the field, so the caller sees the mistake and can send again.
* :class:`ReceivedText` is a citizen's own words as a provider's webhook delivers them
  (Twilio's incoming SMS, GOV.UK Notify's received text): NUL and the other control
  characters are removed, never refused, since a refusal would lose the citizen's
  message and the citizen would never see the error.

:class:`Strict` schemas refuse an unknown field with a 400 naming it; :class:`Lenient`
ones ignore it (GOV.UK Notify's sends, providers' webhooks, which add fields over time).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, fields
from marshmallow import ValidationError as MarshmallowError

from shared.errors import ValidationError, flatten_messages

# NUL and the other C0 controls but tab, newline and carriage return, and DEL:
# PostgreSQL refuses NUL, and no phone sends the rest.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_control_characters(text: str) -> str:
    """``text`` without :data:`CONTROL_CHARACTERS` (a citizen's words, kept, not refused)."""
    return CONTROL_CHARACTERS.sub("", text)


class Strict(Schema):
    """An unknown field is a 400: ``Additional properties are not allowed (x was unexpected)``."""

    class Meta:
        unknown = RAISE


class Lenient(Schema):
    """Unknown fields are ignored (a newer client's or provider's field is not an error)."""

    class Meta:
        unknown = EXCLUDE


class Text(fields.String):
    """API text: a NUL character is refused with a message naming the field."""

    default_error_messages = {"nul": "must not contain NUL (\\u0000) characters"}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        return text


class ReceivedText(fields.String):
    """A citizen's words from a provider's webhook: control characters removed (tab and
    newlines kept), never refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> str:
        return strip_control_characters(super()._deserialize(value, attr, data, **kwargs))


def load(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` loaded with ``schema``, or a 400 (:class:`~shared.errors.ValidationError`)
    whose message names each field that is wrong, in GOV.UK Notify's wording.

    For bodies a view reads itself (a form, or JSON checked before loading); a view that
    declares its schema with ``@blp.arguments`` gets the same 400 from shared.http."""
    try:
        return schema.load(data)
    except MarshmallowError as exc:
        raise refusal(exc) from exc


def refusal(exc: MarshmallowError) -> ValidationError:
    """The 400 for a marshmallow error: one sentence a field, joined by ``; ``."""
    return ValidationError("; ".join(flatten_messages(exc.messages)))
