"""HTTP request and response schemas of the notify service (one validation library)."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

LANG = validate.OneOf(("cy", "en"))


class Strict(Schema):
    class Meta:
        unknown = RAISE


# -- GOV.UK Notify v2 -----------------------------------------------------------

class SmsRequest(Strict):
    phone_number = fields.String(required=True)
    template_id = fields.UUID(required=True)
    personalisation = fields.Dict(keys=fields.String(), load_default=dict, allow_none=True)
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    sms_sender_id = fields.UUID(load_default=None, allow_none=True)
    scheduled_for = fields.String(load_default=None, allow_none=True)
    # Hysbys extensions: Notify clients never send these, so they change nothing for them.
    language = fields.String(load_default=None, allow_none=True, validate=LANG)
    urgent = fields.Boolean(load_default=False)


class EmailRequest(Strict):
    email_address = fields.String(required=True)
    template_id = fields.UUID(required=True)
    personalisation = fields.Dict(keys=fields.String(), load_default=dict, allow_none=True)
    reference = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    email_reply_to_id = fields.UUID(load_default=None, allow_none=True)
    one_click_unsubscribe_url = fields.String(load_default=None, allow_none=True)
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
    template_type = fields.String(validate=validate.OneOf(("sms", "email", "letter")))
    status = fields.List(fields.String())
    reference = fields.String()
    older_than = fields.UUID()
    include_jobs = fields.String()


class PreviewRequest(Strict):
    personalisation = fields.Dict(keys=fields.String(), load_default=dict, allow_none=True)
    language = fields.String(load_default=None, allow_none=True, validate=LANG)


class TemplateTypeFilter(Strict):
    type = fields.String(validate=validate.OneOf(("sms", "email", "letter")))


class ReceivedTextFilters(Strict):
    older_than = fields.UUID()


# -- native API -----------------------------------------------------------------

class BilingualText(Strict):
    en = fields.String(required=True, validate=validate.Length(min=1, max=10000))
    cy = fields.String(required=True, validate=validate.Length(min=1, max=10000))


class OptionalBilingualText(Strict):
    en = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    cy = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class TemplateCreate(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
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
    name = fields.String(validate=validate.Length(min=1, max=200))
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
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
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


class TenantPatch(Strict):
    name = fields.String(validate=validate.Length(min=1, max=200))
    default_language = fields.String(validate=LANG)
    inbound_numbers = fields.List(fields.String())
    sender_ids = fields.List(fields.String(validate=validate.Length(min=1, max=15)))
    team_numbers = fields.List(fields.String())
    providers = fields.List(fields.String(validate=validate.OneOf(
        ("simulator", "twilio", "notify", "smtp"))))
    provider_credentials = fields.Dict(keys=fields.String(), values=fields.Dict())
    quiet_hours = fields.Nested(QuietHours, allow_none=True)
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
    name = fields.String()
    default_language = fields.String()
    config = fields.Dict()
    providers_configured = fields.List(fields.String())
    active = fields.Boolean()
    revision = fields.Integer()


class KeyCreate(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    key_type = fields.String(load_default="live", validate=validate.OneOf(("live", "team", "test")))
    scopes = fields.List(fields.String(), load_default=list)


class KeyCreated(Schema):
    id = fields.String()
    name = fields.String()
    key_type = fields.String()
    api_key = fields.String()


class SuppressionRequest(Strict):
    recipient = fields.String(required=True)
    channel = fields.String(load_default="sms", validate=validate.OneOf(("sms", "email")))
