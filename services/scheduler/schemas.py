"""HTTP request and response schemas of the scheduler (one validation library)."""
from __future__ import annotations

import re

from marshmallow import Schema, fields, post_load, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from services.scheduler import audience
from services.scheduler.models import CAMPAIGN_KINDS, CAMPAIGN_STATUSES
from services.scheduler.recurrence import HHMM, RuleError, check_rule
from shared.schemas import Strict, Text

LANG = validate.OneOf(("cy", "en"))
CHANNEL = validate.OneOf(("sms", "email"))
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_TEXT = 1000


def _flat_attributes(value: dict) -> None:
    # Attributes become template personalisation and audience filters: flat
    # scalars only, so "((round))" and {"round": "A"} mean one obvious thing.
    if len(value) > MAX_ATTRIBUTES:
        raise MarshmallowError(f"may have at most {MAX_ATTRIBUTES} attributes")
    for key, item in value.items():
        if item is not None and not isinstance(item, (str, int, float, bool)):
            raise MarshmallowError(f"must hold only text, numbers, true/false or null "
                                   f"({key} does not)")
        if isinstance(item, str) and "\x00" in item:
            raise MarshmallowError(f"must not contain NUL (\\u0000) characters ({key} does)")
        if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_TEXT:
            raise MarshmallowError(f"may hold at most {MAX_ATTRIBUTE_TEXT} characters a value "
                                   f"({key} has more)")


# -- subscribers ------------------------------------------------------------------

class SubscriberIn(Strict):
    """One subscriber row, as posted in JSON (and later read from CSV)."""

    phone = Text(load_default=None, allow_none=True)
    email = Text(load_default=None, allow_none=True, validate=validate.Length(max=320))
    language = fields.String(load_default=None, allow_none=True, validate=LANG)
    attributes = fields.Dict(keys=Text(validate=validate.Length(min=1, max=64)),
                             load_default=dict, validate=_flat_attributes)

    @validates_schema
    def _needs_a_contact(self, data, **_kwargs):
        if not (data.get("phone") or data.get("email")):
            raise MarshmallowError("phone or email is required: a subscriber needs one")


class RowError(Schema):
    index = fields.Integer()
    row = fields.Integer()
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


class SubscriberPatch(Strict):
    """A team's change to one subscriber: language (null: not known) and attributes, which
    replace the old ones whole (an upload merges; an edit can also remove).  Opting out is
    notify's suppression list (``/api/suppressions``), the citizen's standing choice."""

    language = fields.String(allow_none=True, validate=LANG)
    attributes = fields.Dict(keys=Text(validate=validate.Length(min=1, max=64)),
                             validate=_flat_attributes)


class SubscriberFilters(Strict):
    older_than = fields.UUID()
    page_size = fields.Integer(load_default=250, validate=validate.Range(min=1, max=1000))
    phone = Text()
    email = Text()


# -- rounds -------------------------------------------------------------------------

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                       error="must be 1-64 letters, digits, '-', '_' or '.'")
TIME = validate.Regexp(HHMM.pattern, error="must be a 24-hour time HH:MM, such as 18:00")


class Move(Strict):
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True, allow_none=True)

    @post_load
    def _plain(self, data, **_kwargs):
        return {"from": data["from_"].isoformat(),
                "to": data["to"].isoformat() if data["to"] else None}


class Bilingual(Strict):
    cy = Text(load_default="", validate=validate.Length(max=500))
    en = Text(load_default="", validate=validate.Length(max=500))


class RoundIn(Strict):
    """A collection round: its code (as in subscribers' ``round`` attribute) and calendar."""

    code = fields.String(required=True, validate=CODE)
    name = Text(load_default=None, validate=validate.Length(min=1, max=200))
    rrule = Text(required=True, validate=validate.Length(min=1, max=500))
    start = fields.Date(required=True)
    exdates = fields.List(fields.Date(), load_default=list, validate=validate.Length(max=500))
    moves = fields.List(fields.Nested(Move), load_default=list, validate=validate.Length(max=500))
    description = fields.Nested(Bilingual, load_default=dict)
    personalisation = fields.Dict(keys=Text(validate=validate.Length(min=1, max=64)),
                                  load_default=dict, validate=_flat_attributes)

    @validates_schema
    def _rule_works(self, data, partial=None, **_kwargs):
        if "rrule" in data or "start" in data:
            rule, start = data.get("rrule"), data.get("start")
            if rule is None or start is None:
                return          # a PATCH: checked against the stored values
            try:
                check_rule(rule, start)
            except RuleError as exc:
                raise MarshmallowError({"rrule": [str(exc)]}) from exc


class RoundQuery(Strict):
    until = fields.Date(metadata={"description": "list every collection date up to this day "
                                                 "(at most 400 days ahead), not only the next "
                                                 "six"})


class RoundChange(Strict):
    """One line of a council's holiday calendar: collections due ``from`` go ``to``."""

    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True, allow_none=True)
    rounds = fields.List(fields.String(validate=CODE), load_default=None)


# -- campaigns --------------------------------------------------------------------

class Window(Strict):
    start = fields.String(required=True, validate=TIME)
    end = fields.String(required=True, validate=TIME)


class Offset(Strict):
    days_before = fields.Integer(required=True, validate=validate.Range(min=0, max=90))
    hours_before = fields.Integer(load_default=0, validate=validate.Range(min=0, max=72))
    at = fields.String(load_default=None, allow_none=True, validate=TIME)

    @validates_schema
    def _one_way(self, data, **_kwargs):
        if data.get("at") and data.get("hours_before"):
            raise MarshmallowError("give at (a time of day) or hours_before, not both")
        if not data.get("at") and not data.get("days_before") and not data.get("hours_before"):
            raise MarshmallowError("a reminder must come before the appointment")


class CollectionSchedule(Strict):
    rounds = fields.List(fields.String(validate=CODE), load_default=None,
                         validate=validate.Length(min=1, max=500))
    days_before = fields.Integer(load_default=1, validate=validate.Range(min=0, max=14))
    at = fields.String(load_default="18:00", validate=TIME)


class AppointmentSchedule(Strict):
    offsets = fields.List(fields.Nested(Offset), load_default=None,
                          validate=validate.Length(min=1, max=5))


SCHEDULES = {"collection": CollectionSchedule, "appointment": AppointmentSchedule}
SENDER = re.compile(r"^(\+?[0-9]{6,15}|[A-Za-z0-9 ]{1,11})$")


def _sender(value: str) -> None:
    if not SENDER.match(value) or value.strip() != value or value.isdigit() and len(value) < 6:
        raise MarshmallowError("must be a phone number or an alphanumeric sender ID of at most "
                               "11 letters and digits")


class CampaignFields(Strict):
    name = Text(validate=validate.Length(min=1, max=200))
    template_id = fields.UUID()
    channel = fields.String(validate=CHANNEL)
    send_at = fields.AwareDateTime(allow_none=True)
    audience = fields.Dict(keys=fields.String())
    personalisation = fields.Dict(keys=fields.String())
    urgent = fields.Boolean()
    schedule = fields.Dict(keys=fields.String())
    window = fields.Nested(Window, allow_none=True)
    sender = fields.String(allow_none=True, validate=_sender)
    fragments = fields.Integer(validate=validate.Range(min=1, max=20))

    @validates_schema(skip_on_field_errors=False)
    def _audience_is_a_filter(self, data, **_kwargs):
        found = audience.problems(data.get("audience", {}))
        if found:
            raise MarshmallowError(found)   # each sentence already names audience.<attribute>


class CampaignCreate(CampaignFields):
    name = Text(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(load_default="broadcast", validate=validate.OneOf(CAMPAIGN_KINDS))
    template_id = fields.UUID(required=True)
    channel = fields.String(required=True, validate=CHANNEL)
    audience = fields.Dict(keys=fields.String(), load_default=dict)
    personalisation = fields.Dict(keys=fields.String(), load_default=dict)
    urgent = fields.Boolean(load_default=False)
    schedule = fields.Dict(keys=fields.String(), load_default=dict)
    window = fields.Nested(Window, load_default=None, allow_none=True)
    sender = fields.String(load_default=None, allow_none=True, validate=_sender)
    fragments = fields.Integer(load_default=1, validate=validate.Range(min=1, max=20))
    start_paused = fields.Boolean(load_default=False, metadata={
        "description": "set it up paused: nothing sends until POST .../resume (the console "
                       "does this, so the team sees the dry run before it starts)"})

    @validates_schema
    def _schedule_fits_the_kind(self, data, **_kwargs):
        kind = data.get("kind", "broadcast")
        if kind == "broadcast" and not data.get("send_at"):
            raise MarshmallowError({"send_at": ["send_at is required for a broadcast"]})
        if kind != "broadcast" and data.get("send_at"):
            raise MarshmallowError({"send_at": [f"a {kind} campaign has no send_at: "
                                                "its schedule says when it sends"]})
        check_schedule(kind, data.get("schedule") or {})

    @post_load
    def _normalise(self, data, **_kwargs):
        data["schedule"] = load_schedule(data["kind"], data.get("schedule") or {})
        return data


def check_schedule(kind: str, schedule: dict) -> None:
    """Raise a marshmallow error naming ``schedule.<field>`` when ``schedule`` is wrong."""
    if kind == "broadcast":
        if schedule:
            raise MarshmallowError({"schedule": ["a broadcast has no schedule: use send_at"]})
        return
    errors = SCHEDULES[kind]().validate(schedule)
    if errors:
        raise MarshmallowError({"schedule": errors})


def load_schedule(kind: str, schedule: dict) -> dict:
    if kind == "broadcast":
        return {}
    loaded = SCHEDULES[kind]().load(schedule)
    return {k: v for k, v in loaded.items() if v is not None}


class CampaignPatch(CampaignFields):
    """Only what is given changes; pending occurrences are planned again."""


class CampaignOut(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    template_id = fields.String()
    channel = fields.String()
    status = fields.String()
    send_at = fields.String(allow_none=True)
    audience = fields.Dict()
    personalisation = fields.Dict()
    urgent = fields.Boolean()
    schedule = fields.Dict()
    window = fields.Dict(allow_none=True)
    sender = fields.String(allow_none=True)
    fragments = fields.Integer(metadata={
        "description": "the team's figure: used only where notify's count is unknown"})
    fragments_by_language = fields.Dict(keys=fields.String(), values=fields.Integer(),
                                        allow_none=True, metadata={
        "description": "notify's fragment count for the template: cy, en and cy+en"})
    created_at = fields.String()
    updated_at = fields.String()
    audience_size = fields.Integer()
    occurrences = fields.List(fields.Dict())
    stats = fields.Dict(keys=fields.String(), values=fields.Integer())
    totals = fields.Dict(keys=fields.String(), values=fields.Integer())
    capacity = fields.Dict(allow_none=True)
    warnings = fields.List(fields.String())


class CampaignList(Schema):
    campaigns = fields.List(fields.Dict())
    links = fields.Nested(Links)


class CampaignFilters(Strict):
    older_than = fields.UUID()
    status = fields.String(validate=validate.OneOf(CAMPAIGN_STATUSES))
    kind = fields.String(validate=validate.OneOf(CAMPAIGN_KINDS))


class PreviewArgs(Strict):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))
    price_per_fragment = fields.Float(load_default=None, validate=validate.Range(min=0, max=10))


# -- appointments -----------------------------------------------------------------

REFERENCE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$",
                            error="must be 1-100 letters, digits or . _ : / -")


class AppointmentFields(Strict):
    campaign_id = fields.UUID()
    phone = Text(allow_none=True)
    email = Text(allow_none=True, validate=validate.Length(max=320))
    language = fields.String(allow_none=True, validate=LANG)
    starts_at = fields.AwareDateTime()
    personalisation = fields.Dict(keys=Text(validate=validate.Length(min=1, max=64)),
                                  validate=_flat_attributes)
    offsets = fields.List(fields.Nested(Offset), allow_none=True,
                          validate=validate.Length(min=1, max=5))


class AppointmentIn(AppointmentFields):
    external_reference = fields.String(required=True, validate=REFERENCE)
    campaign_id = fields.UUID(required=True)
    starts_at = fields.AwareDateTime(required=True)


class AppointmentPatch(AppointmentFields):
    """A board's change: a new time moves the pending reminders."""


APPOINTMENT_STATUSES = ("booked", "confirmed", "rearrange_requested", "cancelled")


class StatusList(fields.String):
    """``status=cancelled`` or ``status=confirmed,rearrange_requested``."""

    def _deserialize(self, value, attr, data, **kwargs):
        items = [v.strip() for v in super()._deserialize(value, attr, data, **kwargs).split(",")
                 if v.strip()]
        bad = [v for v in items if v not in APPOINTMENT_STATUSES]
        if not items or bad:
            raise MarshmallowError(f"must be one or more of {', '.join(APPOINTMENT_STATUSES)} "
                                   "(comma-separated)")
        return items


class AppointmentFilters(Strict):
    """``GET /api/appointments``: an unknown or bad filter is a 400 naming it."""

    older_than = fields.UUID()
    page_size = fields.Integer(load_default=250, validate=validate.Range(min=1, max=1000))
    status = StatusList()
    starts_from = fields.Date(metadata={"description": "first day (Europe/London), included"})
    starts_to = fields.Date(metadata={"description": "last day (Europe/London), included"})
    reference = fields.String(validate=REFERENCE)

    @validates_schema
    def _range(self, data, **_kwargs):
        if data.get("starts_from") and data.get("starts_to") \
                and data["starts_to"] < data["starts_from"]:
            raise MarshmallowError("starts_to must not be before starts_from", "starts_to")


# -- answers documented, not dumped (the views return these dicts as they are) -------

class Upcoming(Schema):
    date = fields.String()
    moved_from = fields.String(allow_none=True)


class RoundOut(Schema):
    id = fields.String()
    code = fields.String()
    name = fields.String()
    rrule = fields.String()
    start = fields.String()
    exdates = fields.List(fields.String())
    moves = fields.List(fields.Dict())
    description = fields.Dict()
    personalisation = fields.Dict()
    upcoming = fields.List(fields.Nested(Upcoming))
    warnings = fields.List(fields.String())
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class RoundList(Schema):
    rounds = fields.List(fields.Nested(RoundOut))


class RoundChangeApplied(Schema):
    index = fields.Integer()
    from_ = fields.String(data_key="from")
    to = fields.String(allow_none=True)
    rounds = fields.List(fields.String())


class RoundChangeRefused(Schema):
    index = fields.Integer()
    reason = fields.String()


class RoundChangesOut(Schema):
    """Each change applied (to the rounds named), or refused with its reason."""

    applied = fields.List(fields.Nested(RoundChangeApplied))
    errors = fields.List(fields.Nested(RoundChangeRefused))


class ReminderOut(Schema):
    occurrence_key = fields.String()
    due_at = fields.String(allow_none=True)
    status = fields.String()
    note = fields.String(allow_none=True)


class AppointmentSummary(Schema):
    id = fields.String()
    external_reference = fields.String()
    campaign_id = fields.String()
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    starts_at = fields.String(allow_none=True)
    status = fields.String()
    status_source = fields.String(allow_none=True)
    reply_code = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class AppointmentOut(AppointmentSummary):
    personalisation = fields.Dict()
    offsets = fields.List(fields.Raw(), allow_none=True)
    reminders = fields.List(fields.Nested(ReminderOut))


class AppointmentList(Schema):
    appointments = fields.List(fields.Nested(AppointmentSummary))
    links = fields.Nested(Links)


class LiveAppointment(Schema):
    id = fields.String()
    external_reference = fields.String()
    reply_code = fields.String()
    status = fields.String()
    starts_at = fields.String()
    language = fields.String(allow_none=True)


class Citizen(Schema):
    """What inbound needs to answer a reply: the recorded language, the live appointments."""

    phone = fields.String()
    language = fields.String(allow_none=True)
    subscriber_language = fields.String(allow_none=True)
    appointments = fields.List(fields.Nested(LiveAppointment))


class UploadResult(UpsertResult):
    """A CSV upload's answer: an upsert's counts and row errors, and how it ended."""

    complete = fields.Boolean()
    rows = fields.Integer()
    opted_out = fields.Integer()
    errors_total = fields.Integer()
    errors_truncated = fields.Boolean()


class PreviewOccurrence(Schema):
    occurrence_key = fields.String()
    due_at = fields.String(allow_none=True)
    scheduled_at = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class PreviewRequest(Schema):
    occurrence_key = fields.String()
    recipient = fields.String(allow_none=True)
    language = fields.String()
    template_id = fields.String()
    personalisation = fields.Dict()
    not_before = fields.String(allow_none=True)


class PreviewOut(Schema):
    campaign_id = fields.String()
    dry_run = fields.Boolean()
    occurrences = fields.List(fields.Nested(PreviewOccurrence))
    recipients = fields.Integer()
    languages = fields.Dict(keys=fields.String(), values=fields.Integer())
    fragments_per_message = fields.Integer(metadata={"description": "the audience's mean"})
    fragments_by_language = fields.Dict(keys=fields.String(), values=fields.Integer(),
                                        allow_none=True)
    fragments_source = fields.String(allow_none=True, metadata={
        "description": "template (notify's count) or campaign (the team's figure)"})
    segments = fields.Integer()
    price_per_fragment = fields.Float()
    estimated_cost = fields.Float()
    capacity = fields.Dict(allow_none=True)
    sample = fields.List(fields.Nested(PreviewRequest))
    generated_at = fields.String()


class CollectionDay(Schema):
    date = fields.String()
    round = fields.String()
    description = fields.Dict(keys=fields.String(), values=fields.String())


class NextCollection(Schema):
    phone = fields.String()
    next_collection = fields.Nested(CollectionDay, allow_none=True)


class SubscriberByPhone(Schema):
    id = fields.String()
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    attributes = fields.Dict()
    opted_out = fields.Boolean()
