"""Phone numbers: one recipient, however it is written.

Normalised to E.164 with ``phonenumbers``; UK is the default region, so
``07700 900123``, ``+44 7700 900123`` and ``0044 7700 900123`` are one number.
"""
from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

DEFAULT_REGION = "GB"
OFCOM_DRAMA_MOBILE = "+447700900"
# What people type around digits.  Letters are refused: libphonenumber would read
# "07700 900ABC" as a keypad number (…900222) and text a stranger.
_ALLOWED = re.compile(r"^[0-9\s+()./\-]+$")


class InvalidPhoneNumber(ValueError):
    """The message says why, in words a service team can act on."""


def normalise(raw: str, region: str = DEFAULT_REGION, *, mobile_only: bool = False) -> str:
    """``raw`` as E.164 (``+447700900123``), or :class:`InvalidPhoneNumber` saying why."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhoneNumber("Not a valid phone number: it is empty")
    text = raw.strip()
    if not _ALLOWED.match(text):
        raise InvalidPhoneNumber("Not a valid phone number: it must not contain letters or "
                                 "symbols other than + ( ) - . /")
    if text.count("+") > 1 or "+" in text[1:]:
        raise InvalidPhoneNumber("Not a valid phone number: + may only come first")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(f"Not a valid phone number: {_reason(exc)}") from exc
    _check_length(number)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if e164.startswith(OFCOM_DRAMA_MOBILE) and len(e164) == 13:
        # Ofcom's range for fiction, used by GOV.UK Notify's test numbers:
        # libphonenumber calls it invalid, but it must be sendable (to the simulator).
        return e164
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber("Not a valid phone number: no such number range")
    if mobile_only and phonenumbers.number_type(number) not in (
            PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise InvalidPhoneNumber("Not a UK mobile number: text messages need a mobile")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _check_length(number) -> None:
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == phonenumbers.ValidationResult.IS_POSSIBLE:
        return
    words = {phonenumbers.ValidationResult.TOO_SHORT: "too short",
             phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too short",
             phonenumbers.ValidationResult.TOO_LONG: "too long",
             phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code"}
    raise InvalidPhoneNumber(f"Not a valid phone number: "
                             f"{words.get(reason, 'wrong number of digits')} for +{number.country_code}")


def try_normalise(raw: str) -> str | None:
    try:
        return normalise(raw)
    except InvalidPhoneNumber:
        return None


def _reason(exc: NumberParseException) -> str:
    return {
        NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        NumberParseException.NOT_A_NUMBER: "it contains characters that are not digits",
        NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        NumberParseException.TOO_SHORT_NSN: "too short",
        NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, str(exc))


def normalise_email(raw: str) -> str:
    """One form for an email address everywhere (suppression and opt-out matching)."""
    import re

    address = (raw or "").strip()
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", address) or len(address) > 320:
        raise ValueError("Not a valid email address")
    return address.lower()
