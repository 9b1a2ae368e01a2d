"""Properties of the platform's input handling that the unit tests' examples do not reach.

Existing property tests (tests/unit: SMS encoding and fragments, phone formats,
placeholder matching, keyword reading) are not repeated; these add what a hostile
or careless input could still break: the event decoder a poison message meets, the
fixed points of phone and text normalisation, rendering any template text, the
recurrence rules a service team types, and reminders on the days the clocks change.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.inbound import keywords
from services.notify.templates import (
    MissingPersonalisation,
    placeholder_key,
    placeholders,
    render,
)
from services.scheduler import recurrence
from shared import events, phone, smstext

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONDON = recurrence.LONDON

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)


# -- the event decoder: what a poison message meets --------------------------------

@FAST
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_decode_to_an_event_or_an_event_error_never_anything_else(raw):
    try:
        events.Event.from_json(raw)
    except events.EventError:
        pass


@FAST
@given(data=json_values, type_=st.sampled_from(sorted(events.EVENT_SCHEMAS)) | st.text(max_size=30),
       tenant=st.one_of(st.none(), st.uuids().map(str), st.text(max_size=40)))
def test_any_json_envelope_decodes_or_is_refused_as_poison(data, type_, tenant):
    envelope = {"id": str(uuid.uuid4()), "type": type_, "version": 1, "tenant_id": tenant,
                "occurred_at": "2026-11-25T18:00:00+00:00", "correlation_id": None, "data": data}
    try:
        events.Event.from_json(json.dumps(envelope))
    except events.EventError:
        pass


@FAST
@given(recipient=st.text(min_size=3, max_size=320).filter(str.strip),
       personalisation=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=50), max_size=5),
       language=st.sampled_from([None, "cy", "en"]), urgent=st.booleans())
def test_a_valid_request_survives_the_wire_unchanged(recipient, personalisation, language, urgent):
    sent = events.make("notification.requested", uuid.uuid4(), "cid",
                       notification_id=str(uuid.uuid4()), template_id=str(uuid.uuid4()), channel="sms",
                       recipient=recipient, personalisation=personalisation, language=language,
                       urgent=urgent)
    got = events.Event.from_json(sent.to_json())
    assert (got.id, got.type, got.tenant_id) == (sent.id, sent.type, sent.tenant_id)
    assert got.data["recipient"] == recipient and got.data["personalisation"] == personalisation


# -- phone numbers ------------------------------------------------------------------

uk_mobiles = st.integers(min_value=0, max_value=99_999_999).map(lambda n: f"+4474{n:08d}")


@FAST
@given(st.text(alphabet="0123456789 +()-./x#*", max_size=25) | st.text(max_size=25))
def test_a_normalised_number_is_e164_and_a_fixed_point(raw):
    try:
        once = phone.normalise(raw)
    except phone.InvalidPhoneNumber as exc:
        assert str(exc).startswith("Not a")           # says why, in words
        return
    assert re.fullmatch(r"\+[1-9]\d{6,14}", once)
    assert phone.normalise(once) == once


@FAST
@given(uk_mobiles, st.sampled_from(["{n}", "0{d}", "0044{d}", "+44 {d}", "+44({d})", "0{d4} {d6}"]))
def test_try_normalise_agrees_with_normalise(number, shape):
    national = number[3:]
    written = shape.format(n=number, d=national, d4=national[:4], d6=national[4:])
    try:
        expected = phone.normalise(written)
    except phone.InvalidPhoneNumber:
        expected = None
    assert phone.try_normalise(written) == expected


# -- SMS text -----------------------------------------------------------------------

@FAST
@given(st.text(max_size=1000))
def test_fragments_follow_the_published_arithmetic_for_any_text(text):
    info = smstext.analyse(text)
    single, multi = smstext.SINGLE[info.encoding], smstext.MULTI[info.encoding]
    expected = 1 if info.units <= single else math.ceil(info.units / multi)
    assert info.fragments == max(1, expected)
    assert smstext.too_long(text) == (info.characters > smstext.MAX_CHARACTERS)


@FAST
@given(st.text(max_size=300))
def test_normalising_text_keeps_every_letter_and_digit(text):
    out = smstext.normalise(text)
    assert smstext.normalise(out) == out
    kept = [c for c in text if c.isalnum()]
    assert [c for c in out if c.isalnum()] == kept


# -- placeholders -------------------------------------------------------------------

@FAST
@given(template=st.text(max_size=200), values=st.dictionaries(
    st.text(min_size=1, max_size=15), st.one_of(st.text(max_size=30), st.integers(), st.booleans(),
                                                 st.none()), max_size=6))
def test_rendering_any_template_text_either_renders_or_names_what_is_missing(template, values):
    try:
        out = render(template, values)
    except MissingPersonalisation as exc:
        assert str(exc)
        return
    assert isinstance(out, str)
    if "((" not in template:
        assert out == template


@FAST
@given(st.text(alphabet=st.characters(blacklist_characters="()?"), min_size=1, max_size=20).filter(str.strip),
       st.text(max_size=60))
def test_a_value_that_looks_like_a_placeholder_is_never_rendered_again(name, value):
    assume(name.strip() == name)
    assume(placeholder_key(name))     # "((-))" has no name: it is text, not a placeholder
    text = render(f"Hello (({name}))", {name: f"(({name})) {value}"})
    assert text == f"Hello (({name})) {value}"
    assert placeholders(f"(({name}))") != []


# -- keywords -----------------------------------------------------------------------

@FAST
@given(st.text(max_size=200))
def test_reading_a_reply_is_deterministic_and_ignores_case_and_outer_space(body):
    first = keywords.parse(body)
    assert keywords.parse(body) == first
    assert keywords.parse(f"  {body.upper()}\n").intent == keywords.parse(body.upper()).intent


# -- recurrence ---------------------------------------------------------------------

@FAST
@given(st.text(max_size=80), st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)))
def test_any_rule_a_team_types_is_accepted_or_refused_in_words(text, start):
    try:
        recurrence.parse_rule(text, start)
    except recurrence.RuleError as exc:
        assert str(exc)


clock_change_days = st.integers(min_value=2020, max_value=2040).flatmap(lambda year: st.sampled_from([
    max(dt.date(year, 3, d) for d in range(25, 32) if dt.date(year, 3, d).weekday() == 6),
    max(dt.date(year, 10, d) for d in range(25, 32) if dt.date(year, 10, d).weekday() == 6)]))


@FAST
@given(day=clock_change_days | st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2040, 12, 31)),
       days_before=st.integers(min_value=0, max_value=14),
       # fold=0, as parse_time("HH:MM") makes them (fold=1 reads a spring-gap time an hour early)
       at=st.times().map(lambda t: t.replace(second=0, microsecond=0, fold=0)))
def test_a_reminder_happens_once_on_the_right_local_day_whatever_the_clocks_do(day, days_before, at):
    when = recurrence.reminder_at(day, days_before, at)
    local = when.astimezone(LONDON)
    assert when.tzinfo is not None
    assert local.date() == day - dt.timedelta(days=days_before)
    # the wall time is kept, except the hour that does not exist in spring (an hour later)
    shift = (dt.datetime.combine(local.date(), local.time()) - dt.datetime.combine(local.date(), at))
    assert shift in (dt.timedelta(0), dt.timedelta(hours=1))
