"""HTTP request and response schemas of the scheduler (one validation library)."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from services.scheduler import audience
from services.scheduler.models import CAMPAIGN_KINDS, CAMPAIGN_STATUSES

LANG = validate.OneOf(("cy", "en"))
CHANNEL = validate.OneOf(("sms", "email"))
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_TEXT = 1000


class Strict(Schema):
    class Meta:
        unknown = RAISE


def _flat_attributes(value: dict) -> None:
    # Attributes become template personalisation and audience filters: flat
    # scalars only, so "((round))" and {"round": "A"} mean one obvious thing.
    if len(value) > MAX_ATTRIBUTES:
        raise MarshmallowError(f"may have at most {MAX_ATTRIBUTES} attributes")
    for key, item in value.items():
        if item is not None and not isinstance(item, (str, int, float, bool)):
            raise MarshmallowError(f"must hold only text, numbers, true/false or null "
                                   f"({key} does not)")
        if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_TEXT:
            raise MarshmallowError(f"may hold at most {MAX_ATTRIBUTE_TEXT} characters a value "
                                   f"({key} has more)")


# -- subscribers ------------------------------------------------------------------

class SubscriberIn(Strict):
    """One subscriber row, as posted in JSON (and later read from CSV)."""

    phone = fields.String(load_default=None, allow_none=True)
    email = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=320))
    language = fields.String(load_default=None, allow_none=True, validate=LANG)
    attributes = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)),
                             load_default=dict, validate=_flat_attributes)

    @validates_schema
    def _needs_a_contact(self, data, **_kwargs):
        if not (data.get("phone") or data.get("email")):
            raise MarshmallowError("phone or email is required: a subscriber needs one")


class RowError(Schema):
    index = fields.Integer()
    reason = fields.String()


class UpsertResult(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    errors = fields.List(fields.Nested(RowError))


class SubscriberOut(Schema):
    id = fields.String()
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    attributes = fields.Dict()
    opted_out = fields.Boolean()
    created_at = fields.String()
    updated_at = fields.String()


class Links(Schema):
    current = fields.String()
    next = fields.String()


class SubscriberList(Schema):
    subscribers = fields.List(fields.Nested(SubscriberOut))
    links = fields.Nested(Links)


class SubscriberFilters(Strict):
    older_than = fields.UUID()
    page_size = fields.Integer(load_default=250, validate=validate.Range(min=1, max=1000))
    phone = fields.String()
    email = fields.String()


# -- campaigns --------------------------------------------------------------------

class CampaignCreate(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(load_default="broadcast", validate=validate.OneOf(CAMPAIGN_KINDS))
    template_id = fields.UUID(required=True)
    channel = fields.String(required=True, validate=CHANNEL)
    send_at = fields.AwareDateTime(required=True)
    audience = fields.Dict(keys=fields.String(), load_default=dict)
    personalisation = fields.Dict(keys=fields.String(), load_default=dict)
    urgent = fields.Boolean(load_default=False)

    @validates_schema(skip_on_field_errors=False)
    def _audience_is_a_filter(self, data, **_kwargs):
        found = audience.problems(data.get("audience", {}))
        if found:
            raise MarshmallowError(found)   # each sentence already names audience.<attribute>


class OccurrenceOut(Schema):
    occurrence_key = fields.String()
    due_at = fields.String()
    status = fields.String()
    requested = fields.Integer()
    skipped = fields.Integer()
    completed_at = fields.String(allow_none=True)
    stats = fields.Dict(keys=fields.String(), values=fields.Integer())


class CampaignOut(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    template_id = fields.String()
    channel = fields.String()
    status = fields.String()
    send_at = fields.String()
    audience = fields.Dict()
    personalisation = fields.Dict()
    urgent = fields.Boolean()
    created_at = fields.String()
    updated_at = fields.String()
    audience_size = fields.Integer()
    occurrences = fields.List(fields.Nested(OccurrenceOut))
    stats = fields.Dict(keys=fields.String(), values=fields.Integer())


class CampaignList(Schema):
    campaigns = fields.List(fields.Nested(CampaignOut))
    links = fields.Nested(Links)


class CampaignFilters(Strict):
    older_than = fields.UUID()
    status = fields.String(validate=validate.OneOf(CAMPAIGN_STATUSES))
