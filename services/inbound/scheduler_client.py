"""What inbound asks the scheduler while a citizen waits: the next collection, the address.

Two small ports, one HTTP implementation.  Both calls are platform-internal
(``Authorization: Bearer $HYSBYS_ADMIN_TOKEN``) and answer within a timeout:
a scheduler that is down, slow or answering nonsense is ``unavailable``, and
the reply is then handed to the team as a question, never a 500.

``GET /internal/tenants/<tenant>/next-collection?phone=<E.164>``
    200 ``{"phone", "next_collection": {"date": "YYYY-MM-DD", "round",
    "description": {"cy", "en"}} | null}``; 404 when the number is no subscriber's.
``GET /internal/tenants/<tenant>/subscribers?phone=<E.164>``
    200 ``{"phone", "attributes": {...}}``; 404 when the number is no subscriber's.
``GET /internal/tenants/<tenant>/citizens?phone=<E.164>``
    200 ``{"phone", "language": "cy"|"en"|null, "appointments": [{"id",
    "external_reference", "reply_code", "status", "starts_at", "language"}]}`` for
    any number: the language recorded for it and its live appointments.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Protocol

import requests
from marshmallow import EXCLUDE, Schema, fields
from marshmallow import ValidationError as MarshmallowError

from services.inbound.routing import Booking

log = logging.getLogger(__name__)

FOUND, UNKNOWN, UNAVAILABLE = "found", "unknown", "unavailable"
DEFAULT_TIMEOUT = 2.0


@dataclass(frozen=True)
class Lookup:
    """An answer from the scheduler: ``found`` (with data), ``unknown`` or ``unavailable``."""

    outcome: str
    data: dict = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.outcome == FOUND


@dataclass(frozen=True)
class NextCollection:
    date: dt.date
    round: str | None
    description: dict


class NextCollectionLookup(Protocol):
    """The next collection for a subscriber's phone: ``data["next_collection"]`` or None."""

    def next_collection(self, tenant_id: str, phone: str) -> Lookup: ...


class SubscriberLookup(Protocol):
    """A subscriber's attributes (UPRN, address, round): ``data["attributes"]``."""

    def subscriber(self, tenant_id: str, phone: str) -> Lookup: ...


class CitizenLookup(Protocol):
    """The language recorded for a phone and its live appointments (``data``)."""

    def citizen(self, tenant_id: str, phone: str) -> Lookup: ...


class SchedulerLookups(NextCollectionLookup, SubscriberLookup, CitizenLookup, Protocol):
    """The questions inbound asks the scheduler."""


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _Description(_Lenient):
    cy = fields.String(load_default=None, allow_none=True)
    en = fields.String(load_default=None, allow_none=True)


class _Collection(_Lenient):
    date = fields.Date(required=True)
    round = fields.String(load_default=None, allow_none=True)
    description = fields.Nested(_Description, load_default=dict)


class NextCollectionAnswer(_Lenient):
    next_collection = fields.Nested(_Collection, required=True, allow_none=True)


class SubscriberAnswer(_Lenient):
    attributes = fields.Dict(keys=fields.String(), load_default=dict)


class _Booking(_Lenient):
    id = fields.String(required=True)
    external_reference = fields.String(required=True)
    reply_code = fields.String(load_default=None, allow_none=True)
    starts_at = fields.AwareDateTime(load_default=None, allow_none=True)
    language = fields.String(load_default=None, allow_none=True)


class CitizenAnswer(_Lenient):
    language = fields.String(load_default=None, allow_none=True)
    appointments = fields.List(fields.Nested(_Booking), load_default=list)


@dataclass
class HttpScheduler:
    """:class:`SchedulerLookups` over the scheduler's internal HTTP API."""

    base_url: str
    admin_token: str
    http: requests.Session
    timeout: float = DEFAULT_TIMEOUT

    def next_collection(self, tenant_id: str, phone: str) -> Lookup:
        return self._get(f"/internal/tenants/{tenant_id}/next-collection", phone,
                         NextCollectionAnswer())

    def subscriber(self, tenant_id: str, phone: str) -> Lookup:
        return self._get(f"/internal/tenants/{tenant_id}/subscribers", phone, SubscriberAnswer())

    def citizen(self, tenant_id: str, phone: str) -> Lookup:
        return self._get(f"/internal/tenants/{tenant_id}/citizens", phone, CitizenAnswer())

    def _get(self, path: str, phone: str, schema: Schema) -> Lookup:
        try:
            resp = self.http.get(self.base_url.rstrip("/") + path, params={"phone": phone},
                                 timeout=self.timeout,
                                 headers={"Authorization": f"Bearer {self.admin_token}"})
        except requests.RequestException as exc:
            log.warning("the scheduler did not answer %s: %s", path, type(exc).__name__)
            return Lookup(UNAVAILABLE)
        if resp.status_code == 404:
            return Lookup(UNKNOWN)
        if resp.status_code != 200:
            log.warning("the scheduler answered %s with %s", path, resp.status_code)
            return Lookup(UNAVAILABLE)
        try:
            return Lookup(FOUND, schema.load(resp.json()))
        except (ValueError, MarshmallowError) as exc:
            log.warning("the scheduler's answer to %s is not the contract: %s", path, exc)
            return Lookup(UNAVAILABLE)


def next_collection_of(lookup: Lookup) -> NextCollection | None:
    """The collection in a found answer, or None (no collection booked)."""
    raw = lookup.data.get("next_collection") if lookup.found else None
    if not raw:
        return None
    return NextCollection(date=raw["date"], round=raw.get("round"),
                          description=raw.get("description") or {})


def recorded_language(lookup: Lookup | None) -> str | None:
    """The language the scheduler has recorded for the number ("cy", "en" or None)."""
    language = lookup.data.get("language") if lookup is not None and lookup.found else None
    return language if language in ("cy", "en") else None


def bookings_of(lookup: Lookup | None):
    """The live appointments in a found answer; None when the scheduler did not answer."""
    if lookup is None or not lookup.found:
        return None
    return [Booking(id=str(b["id"]), external_reference=b["external_reference"],
                    reply_code=b.get("reply_code"), starts_at=b.get("starts_at"),
                    language=b.get("language") if b.get("language") in ("cy", "en") else None)
            for b in lookup.data.get("appointments", [])]
