"""Rows written in clear before the personal-data migrations (notify 0008, inbound 0007,
scheduler 0006) come out encrypted and hashed, and every look-up still finds them —
on SQLite and on PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from services.inbound import replies
from services.inbound.models import ServiceRequest
from services.inbound.wiring import MIGRATIONS as INBOUND
from services.notify.sending import find_suppression, suppressed_among
from services.notify.wiring import MIGRATIONS as NOTIFY
from services.scheduler import appointments, audience, rounds
from services.scheduler.models import Appointment, Occurrence, Subscriber
from services.scheduler.wiring import MIGRATIONS as SCHEDULER
from shared import pii
from shared.crypto import SecretBox
from shared.db import Database, encrypt_with, upgrade
from shared.errors import NotFound

TENANT = "5b0b5a5e-0000-4000-8000-000000000001"
NUMBER = "+447700900311"
EMAIL = "ceri.jones@example.com"
UPRN = "100100012345"
WHEN = dt.datetime(2026, 11, 30, 9, 0)
TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_-]{92,}={0,2}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/hysbys.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key().decode())


def _at(url: str, service: str, box: SecretBox, migrations, revision: str) -> Database:
    db = Database.connect(url, service)
    encrypt_with(db.engine, box)
    upgrade(db, migrations, revision)
    return db


def _raw(db: Database, table: str) -> list[dict]:
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(f'SELECT * FROM "{table}"')).mappings()]


def _clear_values(rows: list[dict], *needles: str) -> list:
    return [(k, v) for row in rows for k, v in row.items()
            if isinstance(v, str) and any(n in v for n in needles)]


def test_notify_suppressions_in_clear_are_encrypted_hashed_and_still_honoured(url, box):
    db = _at(url, "notify", box, NOTIFY, "0005")
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO suppressions (tenant_id, channel, recipient, source, "
                             "created_at) VALUES (:t, 'sms', :n, 'reply', :w), "
                             "(:t, 'email', :e, 'team', :w)"), {"t": TENANT, "n": NUMBER,
                                                                 "e": EMAIL, "w": WHEN})
    upgrade(db, NOTIFY)
    rows = _raw(db, "suppressions")
    assert not _clear_values(rows, "7700900311", EMAIL)
    assert all(TOKEN.fullmatch(r["recipient"]) for r in rows)
    with db.read() as session:
        assert {r["recipient_hash"] for r in rows} == {pii.lookup_hash(session, NUMBER),
                                                      pii.lookup_hash(session, EMAIL)}
        # found however the number or address is written, and read back in clear
        assert find_suppression(session, TENANT, "sms", "07700 900311").recipient == NUMBER
        assert find_suppression(session, TENANT, "email", EMAIL.upper()).recipient == EMAIL
        assert suppressed_among(session, TENANT, "sms", {NUMBER, "+447700900312"}) == {NUMBER}
    upgrade(db, NOTIFY)                       # at head: nothing to do, nothing changed
    assert _raw(db, "suppressions") == rows
    db.dispose()


def test_inbound_reply_context_preferences_and_requests_in_clear_are_encrypted_and_found(url, box):
    db = _at(url, "inbound", box, INBOUND, "0003")
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO conversations (tenant_id, recipient, notification_id, "
                             "sent_at, appointment_reference) VALUES (:t, :n, 'n-1', :w, '4821')"),
                     {"t": TENANT, "n": NUMBER, "w": WHEN})
        conn.execute(sa.text("INSERT INTO language_preferences (tenant_id, phone, language, "
                             "source, updated_at) VALUES (:t, :n, 'en', 'reply', :w)"),
                     {"t": TENANT, "n": NUMBER, "w": WHEN})
        conn.execute(sa.text(
            "INSERT INTO service_requests (id, tenant_id, reference, token, service_code, status, "
            "requested_at, updated_at, address, address_id, zipcode, attributes, source, phone, "
            "email, first_name, last_name) VALUES ('r-1', :t, 'HYS-AAAAAA', 'tok-1', "
            "'missed_collection', 'open', :w, :w, '1 Stryd y Bont', :u, 'SA1 1AA', :a, 'open311', "
            ":n, :e, 'Ceri', 'Pritchard')"),
            {"t": TENANT, "n": NUMBER, "e": EMAIL, "u": UPRN, "w": WHEN,
             "a": json.dumps({"uprn": UPRN})})
    upgrade(db, INBOUND)
    needles = ("7700900311", EMAIL, UPRN, "Stryd y Bont", "Ceri", "Pritchard", "SA1 1AA")
    for table in ("conversations", "language_preferences", "service_requests"):
        assert not _clear_values(_raw(db, table), *needles), table
    with db.read() as session:
        context = replies.conversation(session, TENANT, "07700 900311")
        assert context is not None and context.appointment_reference == "4821"
        assert replies.language_preference(session, TENANT, "+44 7700 900311") == "en"
        request = session.get(ServiceRequest, "r-1")
        assert (request.phone, request.email, request.first_name, request.address_id,
                request.attributes) == (NUMBER, EMAIL, "Ceri", UPRN, {"uprn": UPRN})
    db.dispose()


def test_scheduler_subscribers_and_appointments_in_clear_are_encrypted_and_found(url, box):
    db = _at(url, "scheduler", box, SCHEDULER, "0003")
    with db.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO subscribers (id, tenant_id, phone, email, language, attributes, opted_out,"
            " created_at, updated_at) VALUES ('s-1', :t, :n, :e, 'cy', :a, false, :w, :w), "
            "('s-2', :t, '+447700900322', NULL, NULL, :b, false, :w, :w)"),
            {"t": TENANT, "n": NUMBER, "e": EMAIL, "w": WHEN,
             "a": json.dumps({"round": "A", "uprn": UPRN, "address": "1 Stryd y Bont"}),
             "b": json.dumps({"round": "B", "bins": 3})})
        conn.execute(sa.text(
            "INSERT INTO appointments (id, tenant_id, campaign_id, external_reference, phone, "
            "starts_at, personalisation, status, reply_code, created_at, updated_at) VALUES "
            "('a-1', :t, 'c-1', 'REF-1', :n, :w, :p, 'booked', '4821', :w, :w)"),
            {"t": TENANT, "n": NUMBER, "w": WHEN, "p": json.dumps({"name": "Ceri Pritchard"})})
        conn.execute(sa.text(
            "INSERT INTO occurrences (id, tenant_id, campaign_id, occurrence_key, due_at, status, "
            "audience, personalisation, appointment_id, spacing, audience_size, requested, "
            "skipped, created_at, updated_at) VALUES ('o-1', :t, 'c-1', 'REF-1:P1D', :w, "
            "'pending', '{}', :p, 'a-1', 0, 0, 0, 0, :w, :w)"),
            {"t": TENANT, "w": WHEN, "p": json.dumps({"name": "Ceri Pritchard"})})
    upgrade(db, SCHEDULER)
    needles = ("7700900311", "7700900322", EMAIL, UPRN, "Stryd y Bont", "Ceri")
    for table in ("subscribers", "appointments", "occurrences"):
        assert not _clear_values(_raw(db, table), *needles), table
    with db.read() as session:
        sub = session.get(Subscriber, "s-1")
        assert (sub.phone, sub.email, sub.attributes["uprn"]) == (NUMBER, EMAIL, UPRN)
        assert sub.phone_hash == pii.lookup_hash(session, "07700 900311")
        assert sub.email_hash == pii.lookup_hash(session, EMAIL)
        # audience filters on attributes, a number as the text it is compared as
        assert audience.size(session, TENANT, "sms", {"round": "A"}) == 1
        assert audience.size(session, TENANT, "sms", {"round": ["A", "B"]}) == 2
        assert audience.size(session, TENANT, "sms", {"bins": "3"}) == 1
        assert audience.size(session, TENANT, "email", {}) == 1
        assert audience.sizes_by(session, TENANT, "sms", {}, "round", ["A", "B", "C"]) == {
            "A": 1, "B": 1}
        # the subscriber by number (WHEN? / MISSED), this number's appointments
        with pytest.raises(NotFound):
            rounds.next_collection(session, TENANT, "+447700900399", WHEN.replace(tzinfo=dt.UTC))
        assert rounds.next_collection(session, TENANT, "07700 900311",
                                      WHEN.replace(tzinfo=dt.UTC))["phone"] == "07700 900311"
        mine = session.scalars(sa.select(Appointment).where(
            Appointment.tenant_id == TENANT,
            appointments.same_contact(session, "07700 900311", None))).all()
        assert [(a.id, a.personalisation) for a in mine] == [("a-1", {"name": "Ceri Pritchard"})]
        assert session.get(Occurrence, "o-1").personalisation == {"name": "Ceri Pritchard"}
    # the unique constraint is the hash's now: a second row for the number is refused
    with pytest.raises(sa.exc.IntegrityError), db.transaction() as session:
        session.add(Subscriber(id="s-3", tenant_id=TENANT, phone=NUMBER, attributes={}))
    db.dispose()
