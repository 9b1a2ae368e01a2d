"""Adding and updating subscribers: one row at a time, bad rows reported, good rows kept.

A subscriber is known by their phone (E.164) or their email (lower-cased)
within a tenant, so posting the same person again updates them and never
makes a second row.  An upload never clears an opt-out: only the citizen's
own START (``subscriber.opted_in``) does that.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy.orm import Session

from services.scheduler.models import Subscriber
from services.scheduler.schemas import SubscriberIn
from shared import phone, pii
from shared.db import utcnow
from shared.errors import flatten_messages

LOOKUP_CHUNK = 500     # keeps IN (...) lists well inside every database's limits


class RowProblem(ValueError):
    """Why one row was not accepted, in words a service team can act on."""


@dataclass
class UpsertOutcome:
    created: int = 0
    updated: int = 0
    errors: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "errors": self.errors}


@dataclass
class UploadOutcome:
    """An upload's tally; only the first ``MAX_REPORTED`` row errors are kept (memory)."""

    MAX_REPORTED = 1000
    key: str = "row"             # CSV: the line number; JSON: the index in the array
    complete: bool = True
    rows: int = 0
    created: int = 0
    updated: int = 0
    opted_out: int = 0
    errors_total: int = 0
    errors: list[dict] = field(default_factory=list)

    def error(self, row: int, reason: str) -> None:
        self.errors_total += 1
        if len(self.errors) < self.MAX_REPORTED:
            self.errors.append({self.key: row, "reason": reason})

    def as_dict(self) -> dict:
        return {"complete": self.complete, "rows": self.rows, "created": self.created,
                "updated": self.updated, "opted_out": self.opted_out, "errors_total": self.errors_total,
                "errors_truncated": self.errors_total > len(self.errors), "errors": self.errors}


UPLOAD_COLUMNS = (Subscriber.id, Subscriber.phone, Subscriber.email, Subscriber.language,
                  Subscriber.attributes, Subscriber.opted_out, Subscriber.upload_id)


def upsert_batch(session: Session, tenant_id: str, batch: list[tuple[int, dict]],
                 upload_id: str, outcome: UploadOutcome) -> None:
    """One batch of an upload: cleaned rows in, one INSERT and one UPDATE out.

    A person already written by this upload (an earlier row, in this batch or
    an earlier one) is a duplicate row: reported, not applied twice.
    """
    now = utcnow()
    known: dict[tuple[str, str], dict] = {}
    for column, name in ((Subscriber.phone_hash, "phone"), (Subscriber.email_hash, "email")):
        values = sorted({pii.lookup_hash(session, d[name]) for _r, d in batch if d.get(name)})
        for chunk in _chunks(values, LOOKUP_CHUNK):
            for found in session.execute(sa.select(*UPLOAD_COLUMNS).where(
                    Subscriber.tenant_id == tenant_id, column.in_(chunk))).mappings():
                record = dict(found)
                for key in ("phone", "email"):
                    if record[key]:
                        known[(key, record[key])] = record
    inserts, updates = [], {}
    for row, data in batch:
        by_phone = known.get(("phone", data["phone"])) if data.get("phone") else None
        by_email = known.get(("email", data["email"])) if data.get("email") else None
        if by_phone and by_email and by_phone is not by_email:
            outcome.error(row, "phone and email belong to two different subscribers")
            continue
        record = by_phone or by_email
        if record is not None and record["upload_id"] == upload_id:
            outcome.error(row, "duplicate: an earlier row of this upload has the same "
                          f"{'phone' if by_phone else 'email'}")
            continue
        if record is None:
            record = {"id": str(uuid.uuid4()), "tenant_id": tenant_id, "phone": None,
                      "email": None, "language": None, "attributes": {}, "opted_out": False,
                      "created_at": now}
            inserts.append(record)
            outcome.created += 1
        else:
            updates[record["id"]] = record
            outcome.updated += 1
            outcome.opted_out += bool(record["opted_out"])
        _merge(record, data, upload_id, now)
        for key in ("phone", "email"):
            if record[key]:
                known[(key, record[key])] = record
    # bulk statements skip the ORM's events: the hashes are set here (shared.pii)
    for record in [*inserts, *updates.values()]:
        record["phone_hash"] = pii.lookup_hash(session, record["phone"])
        record["email_hash"] = pii.lookup_hash(session, record["email"])
        record["attribute_hashes"] = pii.attribute_hashes(session, record["attributes"])
    if inserts:
        session.execute(sa.insert(Subscriber), inserts)
    if updates:
        # opted_out is not written: an upload never clears a citizen's STOP
        session.execute(sa.update(Subscriber), [
            {k: r[k] for k in ("id", "phone", "email", "language", "attributes", "upload_id",
                               "updated_at", "phone_hash", "email_hash", "attribute_hashes")}
            for r in updates.values()])


def _merge(record: dict, data: dict, upload_id: str, now) -> None:
    for name in ("phone", "email", "language"):
        if data.get(name):
            record[name] = data[name]
    if data.get("attributes"):
        record["attributes"] = {**(record["attributes"] or {}), **data["attributes"]}
    record["upload_id"] = upload_id
    record["updated_at"] = now


def clean(row: Any) -> dict:
    """One posted row, validated and normalised; raises :class:`RowProblem`."""
    if not isinstance(row, dict):
        raise RowProblem("each subscriber must be a JSON object")
    try:
        data = SubscriberIn().load(row)
    except MarshmallowError as exc:
        raise RowProblem("; ".join(flatten_messages(exc.messages))) from exc
    # Only what was posted is changed on an existing subscriber: keep the key
    # out when it was not given, so a re-post without "language" keeps it.
    data = {k: v for k, v in data.items() if k in row}
    if data.get("phone"):
        try:
            data["phone"] = phone.normalise(data["phone"])
        except phone.InvalidPhoneNumber as exc:
            raise RowProblem(f"phone {exc}") from exc
    if data.get("email"):
        try:
            data["email"] = phone.normalise_email(data["email"])
        except ValueError as exc:
            raise RowProblem(f"email {exc}") from exc
    return data


def upsert(session: Session, tenant_id: str, rows: list) -> UpsertOutcome:
    """Create or update each row for ``tenant_id``; the caller's transaction commits."""
    outcome = UpsertOutcome()
    cleaned: list[tuple[int, dict]] = []
    for index, row in enumerate(rows):
        try:
            cleaned.append((index, clean(row)))
        except RowProblem as exc:
            outcome.errors.append({"index": index, "reason": str(exc)})
    known = _Known.load(session, tenant_id, cleaned)
    for index, data in cleaned:
        by_phone, by_email = known.find(data.get("phone"), data.get("email"))
        if by_phone is not None and by_email is not None and by_phone is not by_email:
            outcome.errors.append({"index": index, "reason": "phone and email belong to two "
                                   "different subscribers"})
            continue
        existing = by_phone or by_email
        if existing is None:
            known.remember(_create(session, tenant_id, data))
            outcome.created += 1
        else:
            known.forget(existing)
            _update(existing, data)
            known.remember(existing)
            outcome.updated += 1
    return outcome


def _create(session: Session, tenant_id: str, data: dict) -> Subscriber:
    now = utcnow()
    sub = Subscriber(id=str(uuid.uuid4()), tenant_id=tenant_id, phone=data.get("phone"),
                     email=data.get("email"), language=data.get("language"),
                     attributes=data.get("attributes") or {}, opted_out=False,
                     created_at=now, updated_at=now)
    session.add(sub)
    return sub


def _update(sub: Subscriber, data: dict) -> None:
    for name in ("phone", "email"):
        if data.get(name):
            setattr(sub, name, data[name])
    if "language" in data:
        sub.language = data["language"]
    if "attributes" in data:
        # merged, so posting {"round": "B"} moves a subscriber without losing the UPRN
        sub.attributes = {**(sub.attributes or {}), **data["attributes"]}
    sub.updated_at = utcnow()


@dataclass
class _Known:
    """The tenant's subscribers this request touches, by phone and by email."""

    by_phone: dict[str, Subscriber]
    by_email: dict[str, Subscriber]

    @classmethod
    def load(cls, session: Session, tenant_id: str, cleaned: list[tuple[int, dict]]) -> _Known:
        phones = {pii.lookup_hash(session, d["phone"]) for _i, d in cleaned if d.get("phone")}
        emails = {pii.lookup_hash(session, d["email"]) for _i, d in cleaned if d.get("email")}
        known = cls({}, {})
        for column, values in ((Subscriber.phone_hash, phones),
                               (Subscriber.email_hash, emails)):
            for chunk in _chunks(sorted(values), LOOKUP_CHUNK):
                for sub in session.scalars(sa.select(Subscriber).where(
                        Subscriber.tenant_id == tenant_id, column.in_(chunk))):
                    known.remember(sub)
        return known

    def find(self, phone_: str | None, email: str | None):
        return (self.by_phone.get(phone_) if phone_ else None,
                self.by_email.get(email) if email else None)

    def remember(self, sub: Subscriber) -> None:
        if sub.phone:
            self.by_phone[sub.phone] = sub
        if sub.email:
            self.by_email[sub.email] = sub

    def forget(self, sub: Subscriber) -> None:
        self.by_phone.pop(sub.phone or "", None)
        self.by_email.pop(sub.email or "", None)


def _chunks(values: list, size: int) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
