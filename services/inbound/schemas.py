"""What comes in over HTTP, as marshmallow schemas (one validation library).

Providers add fields over time; unknown provider fields are ignored, never
refused.  For Twilio, the signature is checked on the whole form as posted,
unknown fields included, before any of this runs.  The tenant's own API
(keywords, service requests) is strict: an unknown field is a 400 naming it.
"""
from __future__ import annotations

import datetime as dt
import re

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

# Twilio joins a long text into one body of at most 1,600 characters; more is not an SMS.
MAX_SMS_BODY = 1600
_REFERENCE = validate.Length(min=1, max=64)
# NUL and the other C0 controls but tab and newline: PostgreSQL text refuses NUL,
# and no phone sends the rest.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Text(fields.String):
    """A string with control characters removed (tab and newlines kept)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return CONTROL_CHARACTERS.sub("", super()._deserialize(value, attr, data, **kwargs))


class Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class Strict(Schema):
    class Meta:
        unknown = RAISE


class TwilioIncomingSms(Lenient):
    """Twilio's incoming-message webhook (form-encoded)."""

    message_sid = fields.String(required=True, data_key="MessageSid", validate=_REFERENCE)
    account_sid = fields.String(load_default=None, data_key="AccountSid")
    from_number = fields.String(required=True, data_key="From")
    to_number = fields.String(required=True, data_key="To")
    body = Text(load_default="", data_key="Body", validate=validate.Length(max=MAX_SMS_BODY))
    # Set by Twilio's Advanced Opt-Out: STOP, START or HELP, when Twilio has
    # itself acted on the message and answered the citizen.
    opt_out_type = fields.String(load_default=None, data_key="OptOutType")
    num_media = fields.Integer(load_default=0, data_key="NumMedia")


class NotifyReceivedText(Lenient):
    """GOV.UK Notify's received-text callback (JSON)."""

    id = fields.String(required=True, validate=_REFERENCE)
    source_number = fields.String(required=True)
    destination_number = fields.String(required=True)
    message = Text(required=True, validate=validate.Length(max=MAX_SMS_BODY))
    date_received = fields.AwareDateTime(load_default=None, allow_none=True,
                                         default_timezone=dt.UTC)


# -- the tenant's API ------------------------------------------------------------

class Phrases(Strict):
    cy = fields.List(fields.String(validate=validate.Length(min=1, max=80)), load_default=list)
    en = fields.List(fields.String(validate=validate.Length(min=1, max=80)), load_default=list)


class KeywordsPut(Strict):
    """A tenant's words, by intent; an intent left out goes back to the defaults."""

    keywords = fields.Dict(keys=fields.String(), values=fields.Nested(Phrases), required=True)


class KeywordsOut(Schema):
    keywords = fields.Dict()
    customised = fields.List(fields.String())
    fixed = fields.Dict()


class ServiceRequestPatch(Strict):
    """The team's change to a request; the citizen is texted unless told otherwise."""

    status = fields.String(validate=validate.OneOf(("open", "closed")))
    status_notes = Text(allow_none=True, validate=validate.Length(max=1000))
    agency_responsible = fields.String(allow_none=True, validate=validate.Length(max=200))
    service_notice = Text(allow_none=True, validate=validate.Length(max=1000))
    expected_at = fields.AwareDateTime(allow_none=True, default_timezone=dt.UTC)
    notify_citizen = fields.Boolean(load_default=True)


class ServiceRequestFilters(Strict):
    status = fields.String(validate=validate.OneOf(("open", "closed")))
    service_code = fields.String()
    older_than = fields.String()
    page_size = fields.Integer(load_default=250, validate=validate.Range(min=1, max=250))


class LanguageFilters(Strict):
    phone = fields.String()


# -- answers documented, not dumped (the views return these dicts as they are) -------

class StatusChange(Schema):
    status = fields.String()
    status_notes = fields.String(allow_none=True)
    changed_by = fields.String(allow_none=True)
    changed_at = fields.String(allow_none=True)


class ServiceRequestOut(Schema):
    """A request as the team sees it; ``history`` on the one-request answers."""

    id = fields.String()
    reference = fields.String()
    token = fields.String(allow_none=True)
    service_code = fields.String()
    status = fields.String()
    status_notes = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    source = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    address_id = fields.String(allow_none=True)
    zipcode = fields.String(allow_none=True)
    lat = fields.Float(allow_none=True)
    long = fields.Float(allow_none=True)
    media_url = fields.String(allow_none=True)
    attributes = fields.Dict()
    agency_responsible = fields.String(allow_none=True)
    service_notice = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    message_id = fields.String(allow_none=True)
    requested_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    expected_at = fields.String(allow_none=True)
    history = fields.List(fields.Nested(StatusChange))


class NextLink(Schema):
    next = fields.String()


class ServiceRequestList(Schema):
    service_requests = fields.List(fields.Nested(ServiceRequestOut))
    links = fields.Nested(NextLink)


class LanguagePreferenceOut(Schema):
    phone = fields.String()
    language = fields.String()
    source = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class LanguagePreferenceList(Schema):
    language_preferences = fields.List(fields.Nested(LanguagePreferenceOut))
