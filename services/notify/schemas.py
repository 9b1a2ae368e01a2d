"""HTTP request and response schemas of the notify service (one validation library)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from shared.schemas import Lenient, Strict, Text

LANG = validate.OneOf(("cy", "en"))
STATUSES = ("created", "sending", "sent", "delivered", "permanent-failure", "temporary-failure",
            "technical-failure", "suppressed", "deferred", "failed")


def personalisation_field():
    return fields.Dict(keys=Text(validate=validate.Length(max=200)), load_default=dict,
                       allow_none=True)


# -- GOV.UK Notify v2 -----------------------------------------------------------
# GOV.UK Notify's send schemas allow properties they do not know (a newer client's
# option reaches an older API and is ignored, not refused): so do ours (Lenient).

class SmsRequest(Lenient):
    phone_number = Text(required=True, validate=validate.Length(max=100))
    template_id = fields.UUID(required=True)
    personalisation = personalisation_field()
    reference = Text(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    sms_sender_id = fields.UUID(load_default=None, allow_none=True)
    scheduled_for = fields.String(load_default=None, allow_none=True)
    # Hysbys extensions: Notify clients never send these, so they change nothing for them.
    language = fields.String(load_default=None, allow_none=True, validate=LANG)
    urgent = fields.Boolean(load_default=False)


class EmailRequest(Lenient):
    email_address = Text(required=True, validate=validate.Length(max=320))
    template_id = fields.UUID(required=True)
    personalisation = personalisation_field()
    reference = Text(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    email_reply_to_id = fields.UUID(load_default=None, allow_none=True)
    # the List-Unsubscribe link of RFC 8058; Notify takes only https
    one_click_unsubscribe_url = fields.Url(load_default=None, allow_none=True, schemes={"https"},
                                           validate=validate.Length(max=2000),
                                           error_messages={"invalid": "is not a valid https url"})
    # personalisation fields a citizen typed (a name): links are removed from them, as
    # Notify does, so an email cannot carry a link someone else wrote into it
    sanitise_content_for = fields.List(Text(validate=validate.Length(max=200)),
                                       load_default=None, allow_none=True)
    scheduled_for = fields.String(load_default=None, allow_none=True)
    language = fields.String(load_default=None, allow_none=True, validate=LANG)
    urgent = fields.Boolean(load_default=False)


class TemplateRef(Schema):
    id = fields.String()
    version = fields.Integer()
    uri = fields.String()


class SmsContent(Schema):
    body = fields.String()
    from_number = fields.String(allow_none=True)
    encoding = fields.String(allow_none=True, metadata={"description": "Hysbys: GSM-7 or UCS-2"})
    fragment_count = fields.Integer(allow_none=True, metadata={"description": "Hysbys"})


class EmailContent(Schema):
    body = fields.String()
    subject = fields.String()
    from_email = fields.String()
    one_click_unsubscribe_url = fields.String(allow_none=True)


class SmsResponse(Schema):
    id = fields.String()
    reference = fields.String(allow_none=True)
    content = fields.Nested(SmsContent)
    uri = fields.String()
    template = fields.Nested(TemplateRef)
    scheduled_for = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "Hysbys: created, suppressed or deferred"})


class EmailResponse(SmsResponse):
    content = fields.Nested(EmailContent)


class NotificationResponse(Schema):
    id = fields.String()
    reference = fields.String(allow_none=True)
    email_address = fields.String(allow_none=True)
    phone_number = fields.String(allow_none=True)
    type = fields.String()
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    template = fields.Nested(TemplateRef)
    body = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    created_at = fields.String()
    created_by_name = fields.String(allow_none=True)
    sent_at = fields.String(allow_none=True)
    completed_at = fields.String(allow_none=True)
    scheduled_for = fields.String(allow_none=True)
    not_before = fields.String(allow_none=True, metadata={"description": "Hysbys: deferred until"})
    language = fields.String(allow_none=True)
    encoding = fields.String(allow_none=True)
    fragment_count = fields.Integer(allow_none=True)
    line_1 = fields.String(allow_none=True)
    line_2 = fields.String(allow_none=True)
    line_3 = fields.String(allow_none=True)
    line_4 = fields.String(allow_none=True)
    line_5 = fields.String(allow_none=True)
    line_6 = fields.String(allow_none=True)
    postcode = fields.String(allow_none=True)
    postage = fields.String(allow_none=True)


class Links(Schema):
    current = fields.String()
    next = fields.String()


class NotificationList(Schema):
    notifications = fields.List(fields.Nested(NotificationResponse))
    links = fields.Nested(Links)


class NotificationFilters(Strict):
    template_type = fields.List(fields.String(validate=validate.OneOf(("sms", "email", "letter"))))
    status = fields.List(fields.String(validate=validate.OneOf(STATUSES)))
    reference = Text(validate=validate.Length(max=1000))
    older_than = fields.UUID()
    include_jobs = fields.String()


class PreviewRequest(Strict):
    personalisation = personalisation_field()
    language = fields.String(load_default=None, allow_none=True, validate=LANG)


class TemplateTypeFilter(Strict):
    type = fields.String(validate=validate.OneOf(("sms", "email", "letter")))


class ReceivedTextFilters(Strict):
    older_than = fields.UUID()


class TemplateV2Response(Schema):
    id = fields.String()
    name = fields.String()
    type = fields.String()
    created_at = fields.String()
    updated_at = fields.String(allow_none=True)
    created_by = fields.String()
    version = fields.Integer()
    body = fields.String(metadata={"description": "Welsh then English (bilingual)"})
    subject = fields.String(allow_none=True)
    letter_contact_block = fields.String(allow_none=True)
    postage = fields.String(allow_none=True)
    personalisation = fields.Dict(keys=fields.String(), values=fields.Dict())
    body_cy = fields.String(metadata={"description": "Hysbys"})
    body_en = fields.String(metadata={"description": "Hysbys"})
    subject_cy = fields.String(allow_none=True, metadata={"description": "Hysbys"})
    subject_en = fields.String(allow_none=True, metadata={"description": "Hysbys"})


class TemplateV2List(Schema):
    templates = fields.List(fields.Nested(TemplateV2Response))


class PreviewResponse(Schema):
    id = fields.String()
    type = fields.String()
    version = fields.Integer()
    body = fields.String()
    subject = fields.String(allow_none=True)
    html = fields.String(allow_none=True)
    postage = fields.String(allow_none=True)
    language = fields.String(metadata={"description": "Hysbys: cy, en or cy+en"})
    encoding = fields.String(metadata={"description": "Hysbys: GSM-7 or UCS-2 (SMS only)"})
    characters = fields.Integer(metadata={"description": "Hysbys (SMS only)"})
    fragment_count = fields.Integer(metadata={"description": "Hysbys (SMS only)"})


class ReceivedTextResponse(Schema):
    id = fields.String()
    created_at = fields.String()
    service_id = fields.String()
    notify_number = fields.String()
    user_number = fields.String()
    content = fields.String()


class ReceivedTextList(Schema):
    received_text_messages = fields.List(fields.Nested(ReceivedTextResponse))
    links = fields.Nested(Links)


class ErrorItem(Schema):
    error = fields.String()
    message = fields.String()


class ErrorResponse(Schema):
    status_code = fields.Integer()
    errors = fields.List(fields.Nested(ErrorItem))


# -- native API -----------------------------------------------------------------

class BilingualText(Strict):
    en = Text(required=True, validate=validate.Length(min=1, max=10000))
    cy = Text(required=True, validate=validate.Length(min=1, max=10000))


class OptionalBilingualText(Strict):
    en = Text(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    cy = Text(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class TemplateCreate(Strict):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf(("sms", "email")))
    body = fields.Nested(BilingualText, required=True)
    subject = fields.Nested(OptionalBilingualText, load_default=None, allow_none=True)

    @validates_schema
    def _email_needs_subject(self, data, **_kwargs):
        subject = data.get("subject") or {}
        if data.get("type") == "email" and not (subject.get("en") and subject.get("cy")):
            raise MarshmallowError("an email template needs a subject in English and Welsh",
                                   "subject")


class TemplateUpdate(Strict):
    name = Text(validate=validate.Length(min=1, max=200))
    body = fields.Nested(BilingualText)
    subject = fields.Nested(OptionalBilingualText, allow_none=True)
    archived = fields.Boolean()


class SmsInfoSchema(Schema):
    encoding = fields.String()
    characters = fields.Integer()
    fragment_count = fields.Integer()


class TemplateResponse(Schema):
    id = fields.String()
    name = fields.String()
    type = fields.String()
    version = fields.Integer()
    body = fields.Dict()
    subject = fields.Dict(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    archived = fields.Boolean()
    sms = fields.Dict(keys=fields.String(), values=fields.Nested(SmsInfoSchema), allow_none=True)


class TenantCreate(Strict):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    slug = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
        error="must be lower-case letters, digits or hyphens"))
    default_language = fields.String(load_default="cy", validate=LANG)
    config = fields.Dict(load_default=dict)


class QuietHours(Strict):
    start = fields.String(required=True, validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$"))
    end = fields.String(required=True, validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$"))


class Capacity(Strict):
    segments_per_second = fields.Float(required=True, validate=validate.Range(min=0.1, max=1000))
    senders = fields.Integer(required=True, validate=validate.Range(min=1, max=1000))


class SmsSender(Strict):
    """One of a tenant's text senders, chosen by ``sms_sender_id`` as on GOV.UK Notify."""

    id = fields.UUID(load_default=None)
    sms_sender = Text(required=True, validate=validate.Length(min=1, max=20))
    is_default = fields.Boolean(load_default=False)


class EmailReplyTo(Strict):
    """One of a tenant's reply-to addresses, chosen by ``email_reply_to_id``."""

    id = fields.UUID(load_default=None)
    email_address = fields.Email(required=True, validate=validate.Length(max=320))
    is_default = fields.Boolean(load_default=False)


def _one_default(items: list) -> None:
    if sum(1 for i in items if i.get("is_default")) > 1:
        raise MarshmallowError("at most one may be the default (is_default)")


class TenantPatch(Strict):
    name = Text(validate=validate.Length(min=1, max=200))
    default_language = fields.String(validate=LANG)
    inbound_numbers = fields.List(Text(validate=validate.Length(max=100)))
    sender_ids = fields.List(Text(validate=validate.Length(min=1, max=15)))
    team_numbers = fields.List(Text(validate=validate.Length(max=100)))
    providers = fields.List(fields.String(validate=validate.OneOf(
        ("simulator", "twilio", "notify", "smtp"))))
    provider_credentials = fields.Dict(keys=fields.String(), values=fields.Dict())
    provider_weights = fields.Dict(
        keys=fields.String(validate=validate.OneOf(("simulator", "twilio", "notify", "smtp"))),
        values=fields.Integer(validate=validate.Range(min=0, max=1000)))
    quiet_hours = fields.Nested(QuietHours, allow_none=True)
    # GOV.UK Notify sends API notifications at once: quiet hours hold them only if this is on
    quiet_hours_for_api = fields.Boolean()
    sms_senders = fields.List(fields.Nested(SmsSender), validate=_one_default)
    email_reply_to = fields.List(fields.Nested(EmailReplyTo), validate=_one_default)
    rate_limit_per_minute = fields.Integer(validate=validate.Range(min=1, max=1_000_000))
    daily_message_limit = fields.Integer(validate=validate.Range(min=1, max=100_000_000))
    retention_days = fields.Integer(validate=validate.Range(min=1, max=3650))
    webhook_url = fields.Url(allow_none=True, require_tld=False)
    webhook_secret = fields.String(validate=validate.Length(min=16, max=200))
    delivery_status_url = fields.Url(allow_none=True, require_tld=False)
    delivery_status_token = fields.String(validate=validate.Length(min=10, max=200))
    capacity = fields.Nested(Capacity)
    active = fields.Boolean()


class TenantCreated(Schema):
    id = fields.String()
    slug = fields.String()
    api_key = fields.String()
    test_api_key = fields.String()


class TenantResponse(Schema):
    id = fields.String()
    slug = fields.String()
    name = Text()
    default_language = fields.String()
    config = fields.Dict()
    providers_configured = fields.List(fields.String())
    active = fields.Boolean()
    revision = fields.Integer()


class KeyCreate(Strict):
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    key_type = fields.String(load_default="live", validate=validate.OneOf(("live", "team", "test")))
    scopes = fields.List(Text(validate=validate.Length(max=50)), load_default=list)


class KeyCreated(Schema):
    id = fields.String()
    name = Text()
    key_type = fields.String()
    api_key = fields.String()


class SuppressionRequest(Strict):
    recipient = Text(required=True, validate=validate.Length(min=1, max=320))
    channel = fields.String(load_default="sms", validate=validate.OneOf(("sms", "email")))


class SuppressionResponse(Schema):
    recipient = fields.String()
    channel = fields.String()
    source = fields.String()
    created_at = fields.String()
    suppressed = fields.Boolean()


class PageQuery(Strict):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class SuppressionFilters(PageQuery):
    channel = fields.String(validate=validate.OneOf(("sms", "email")))


class PageLinks(Schema):
    current = fields.String()
    next = fields.String()
    prev = fields.String()


class SuppressionList(Schema):
    suppressions = fields.List(fields.Nested(SuppressionResponse))
    total = fields.Integer()
    page = fields.Integer()
    page_size = fields.Integer()
    links = fields.Nested(PageLinks)


class NativePreviewRequest(Strict):
    personalisation = personalisation_field()


class RenderedLanguage(Schema):
    body = fields.String()
    subject = fields.String(allow_none=True)
    encoding = fields.String(metadata={"description": "SMS only"})
    characters = fields.Integer(metadata={"description": "SMS only"})
    fragment_count = fields.Integer(metadata={"description": "SMS only"})


class NativePreviewResponse(Schema):
    id = fields.String()
    type = fields.String()
    version = fields.Integer()
    languages = fields.Dict(keys=fields.String(), values=fields.Nested(RenderedLanguage),
                            metadata={"description": "cy, en and cy+en (language unknown)"})


class BulkQuery(Strict):
    template_id = fields.UUID(metadata={"description": "required for text/csv bodies"})


class BulkRow(Strict):
    phone_number = Text(validate=validate.Length(max=100))
    email_address = Text(validate=validate.Length(max=320))
    personalisation = personalisation_field()
    reference = Text(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    language = fields.String(load_default=None, allow_none=True, validate=LANG)


class BulkJsonRequest(Strict):
    """Documents the JSON form of POST /api/bulk (the body is read as a stream)."""

    template_id = fields.UUID(required=True)
    rows = fields.List(fields.Nested(BulkRow), required=True)


class BulkError(Schema):
    row = fields.Integer(metadata={"description": "1 = the first row after the header"})
    error = fields.String()


class BulkJobResponse(Schema):
    id = fields.String()
    template_id = fields.String()
    channel = fields.String()
    status = fields.String(metadata={"description": "processing, completed or failed"})
    total = fields.Integer()
    accepted = fields.Integer()
    rejected = fields.Integer()
    errors = fields.List(fields.Nested(BulkError))
    errors_truncated = fields.Boolean()
    created_at = fields.String()
    completed_at = fields.String(allow_none=True)


class FragmentsRequest(Strict):
    personalisation = personalisation_field()


class FragmentsResponse(Schema):
    id = fields.String()
    type = fields.String()
    version = fields.Integer()
    languages = fields.Dict(keys=fields.String(), values=fields.Nested(SmsInfoSchema),
                            allow_none=True, metadata={"description": "cy, en and cy+en"})
