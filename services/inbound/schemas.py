"""What comes in over HTTP, as marshmallow schemas (one validation library).

Providers add fields over time; unknown provider fields are ignored, never
refused.  For Twilio, the signature is checked on the whole form as posted,
unknown fields included, before any of this runs.  A citizen's words from a
provider are ``ReceivedText``: control characters removed, never refused.  The
tenant's own API (keywords, service requests, conversations) is strict: an unknown
field, or a NUL in its ``Text``, is a 400 naming the field (shared.schemas).
"""
from __future__ import annotations

import datetime as dt

from marshmallow import Schema, fields, validate

from shared.schemas import Lenient, ReceivedText, Strict, Text

# Twilio joins a long text into one body of at most 1,600 characters; more is not an SMS.
MAX_SMS_BODY = 1600
_REFERENCE = validate.Length(min=1, max=64)


class TwilioIncomingSms(Lenient):
    """Twilio's incoming-message webhook (form-encoded)."""

    message_sid = fields.String(required=True, data_key="MessageSid", validate=_REFERENCE)
    account_sid = fields.String(load_default=None, data_key="AccountSid")
    from_number = fields.String(required=True, data_key="From")
    to_number = fields.String(required=True, data_key="To")
    body = ReceivedText(load_default="", data_key="Body",
                        validate=validate.Length(max=MAX_SMS_BODY))
    # Set by Twilio's Advanced Opt-Out: STOP, START or HELP, when Twilio has
    # itself acted on the message and answered the citizen.
    opt_out_type = fields.String(load_default=None, data_key="OptOutType")
    num_media = fields.Integer(load_default=0, data_key="NumMedia")


class NotifyReceivedText(Lenient):
    """GOV.UK Notify's received-text callback (JSON)."""

    id = fields.String(required=True, validate=_REFERENCE)
    source_number = fields.String(required=True)
    destination_number = fields.String(required=True)
    message = ReceivedText(required=True, validate=validate.Length(max=MAX_SMS_BODY))
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
    status_notes = Text(allow_none=True, validate=validate.Length(max=1000), metadata={
        "description": "the team's notes: never public (texted to the citizen on a change)"})
    public_status_notes = Text(allow_none=True, validate=validate.Length(max=1000), metadata={
        "description": "what Open311's public reads show as status_notes; set explicitly, "
                       "never personal data"})
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
    public_status_notes = fields.String(allow_none=True)
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


# -- conversations: the staff inbox (GET/PATCH /api/conversations, answers by SMS) ----------

CONVERSATION_STATUSES = ("open", "closed")
MESSAGE_DIRECTIONS = ("in", "out")
# reply: the citizen's text; auto_reply: the platform's own answer to it; notification:
# a text notify sent (a reminder, a campaign), as inbound heard it; staff_answer: a
# person's answer through POST .../messages; status_update: "your report ... was closed"
MESSAGE_KINDS = ("reply", "auto_reply", "notification", "staff_answer", "status_update")
ANSWER_MAX = 918        # six concatenated GSM-7 fragments; notify refuses longer SMS anyway


class ConversationFilters(Strict):
    status = fields.String(validate=validate.OneOf(CONVERSATION_STATUSES))
    assigned_to = fields.String(validate=validate.Length(min=1, max=320),
                                metadata={"description": "exactly this staff identity"})
    assigned = fields.Boolean(metadata={"description": "true: assigned to someone; "
                                                       "false: assigned to nobody"})
    keyword = fields.String(validate=validate.Length(min=1, max=32), metadata={
        "description": "a reply in the conversation was read as this intent or action "
                       "(question, missed, when, help, confirm, cancel, opt_out, ...)"})
    since = fields.AwareDateTime(default_timezone=dt.UTC, metadata={
        "description": "last message at or after this time (ISO 8601)"})
    until = fields.AwareDateTime(default_timezone=dt.UTC, metadata={
        "description": "last message before this time (ISO 8601)"})
    older_than = fields.UUID(metadata={"description": "the next page: the id of the last "
                                                      "conversation of this one"})
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=250))


class ConversationPatch(Strict):
    """Assign (free text: a staff member's identity or email; null unassigns), close, reopen."""

    assigned_to = Text(allow_none=True, validate=validate.Length(min=1, max=320))
    status = fields.String(validate=validate.OneOf(CONVERSATION_STATUSES))


class AnswerIn(Strict):
    """A staff answer, sent by SMS through notify in the conversation's ``language``.

    ``body`` is one text for whichever language the conversation is in; or give
    ``body_cy`` and ``body_en`` and the one the citizen reads is sent (both, Welsh
    first, when ``language`` is null).  A language the citizen reads that is not
    given is a 400 naming the field.
    """

    body = Text(validate=validate.Length(min=1, max=ANSWER_MAX))
    body_cy = Text(validate=validate.Length(min=1, max=ANSWER_MAX))
    body_en = Text(validate=validate.Length(min=1, max=ANSWER_MAX))
    author = Text(validate=validate.Length(min=1, max=320), metadata={
        "description": "who answered (staff identity or email); the API key's name if absent"})


class ConversationMessageOut(Schema):
    id = fields.String()
    direction = fields.String(metadata={"enum": list(MESSAGE_DIRECTIONS)})
    kind = fields.String(metadata={"enum": list(MESSAGE_KINDS)})
    # null for a notification whose words inbound never saw (notify keeps those)
    body = fields.String(allow_none=True)
    language = fields.String(allow_none=True, metadata={"description": "cy, en, or null "
                                                        "(bilingual, Welsh first)"})
    keyword = fields.String(allow_none=True)
    action = fields.String(allow_none=True)
    reference = fields.String(allow_none=True, metadata={"description": "the HYS- reference "
                                                         "the citizen was given"})
    service_request = fields.String(allow_none=True, metadata={
        "description": "the HYS- reference of the service request this reply made"})
    campaign_id = fields.String(allow_none=True)
    appointment_id = fields.String(allow_none=True)
    appointment_reference = fields.String(allow_none=True)
    notification_id = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "in: received; out: requested, then "
                                                    "sent (as notify reports it)"})
    author = fields.String(allow_none=True)
    at = fields.String()


class ConversationOut(Schema):
    id = fields.String()
    phone = fields.String()
    status = fields.String(metadata={"enum": list(CONVERSATION_STATUSES)})
    assigned_to = fields.String(allow_none=True)
    language = fields.String(allow_none=True, metadata={
        "description": "the language a staff answer goes in: cy, en, or null (both, Welsh "
                       "first)"})
    opened_at = fields.String(allow_none=True)
    closed_at = fields.String(allow_none=True)
    last_message_at = fields.String()
    created_at = fields.String()
    message_count = fields.Integer()
    last_message = fields.Nested(ConversationMessageOut, allow_none=True)


class ConversationDetail(ConversationOut):
    messages = fields.List(fields.Nested(ConversationMessageOut),
                           metadata={"description": "newest first"})


class ConversationList(Schema):
    conversations = fields.List(fields.Nested(ConversationOut))
    links = fields.Nested(NextLink)


# -- service types: the tenant's own catalogue ------------------------------------------

class LocalisedText(Strict):
    cy = Text(required=True, validate=validate.Length(min=1, max=200))
    en = Text(required=True, validate=validate.Length(min=1, max=200))


class LocalisedLongText(Strict):
    cy = Text(load_default="", validate=validate.Length(max=1000))
    en = Text(load_default="", validate=validate.Length(max=1000))


class LocalisedPhrases(Strict):
    cy = fields.List(fields.String(validate=validate.Length(min=1, max=40)),
                     load_default=list, validate=validate.Length(max=30))
    en = fields.List(fields.String(validate=validate.Length(min=1, max=40)),
                     load_default=list, validate=validate.Length(max=30))


class AttributeValue(Strict):
    key = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = Text(required=True, validate=validate.Length(min=1, max=200))


class ServiceAttribute(Strict):
    """One Open311 attribute (GeoReport v2 service definition)."""

    code = fields.String(required=True, validate=[validate.Length(min=1, max=64),
                                                  validate.Regexp(r"^[A-Za-z0-9_\-]+$")])
    datatype = fields.String(required=True, validate=validate.OneOf(
        ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")))
    description = Text(required=True, validate=validate.Length(min=1, max=500))
    required = fields.Boolean(load_default=False)
    order = fields.Integer(load_default=None, validate=validate.Range(min=1, max=1000))
    datatype_description = Text(load_default=None, allow_none=True,
                                validate=validate.Length(max=200))
    variable = fields.Boolean(load_default=True)
    values = fields.List(fields.Nested(AttributeValue), load_default=list)


class ServiceTypeIn(Strict):
    code = fields.String(required=True, validate=[validate.Length(min=1, max=64),
                                                  validate.Regexp(r"^[a-z0-9_\-]+$", error=(
                                                      "lower-case letters, digits, _ and -"))])
    name = fields.Nested(LocalisedText, required=True)
    description = fields.Nested(LocalisedLongText, load_default=None)
    keywords = fields.Nested(LocalisedPhrases, load_default=None, metadata={
        "description": "phrases that, at the start of a citizen's text, make a request of "
                       "this type (the rest is its description)"})
    group = Text(load_default="", validate=validate.Length(max=100))
    metadata = fields.Boolean(load_default=None, metadata={
        "description": "GeoReport v2: true when the type has attributes; if given, must "
                       "agree with attributes"})
    attributes = fields.List(fields.Nested(ServiceAttribute), load_default=list)


class ServiceTypesPut(Strict):
    service_types = fields.List(fields.Nested(ServiceTypeIn), required=True,
                                validate=validate.Length(min=1, max=100))


class ServiceTypeOut(Schema):
    code = fields.String()
    name = fields.Dict()
    description = fields.Dict()
    keywords = fields.Dict()
    group = fields.String()
    metadata = fields.Boolean()
    attributes = fields.List(fields.Dict())


class ServiceTypeList(Schema):
    service_types = fields.List(fields.Nested(ServiceTypeOut))
    customised = fields.Boolean(metadata={"description": "false: the platform's defaults"})
