"""Who a campaign reaches: the audience filter, checked at set-up and run as SQL.

An audience is a filter on subscriber attributes, ``{"round": "A"}`` or
``{"round": ["A", "B"]}`` (any of); ``{}`` is every subscriber.  Attributes are
personal data, encrypted at rest: the filter compares the keyed hash of each value
(``Subscriber.attribute_hashes``, :func:`shared.pii.attribute_hash` of the value as
text), the same way on SQLite and PostgreSQL.  A subscriber is
*eligible* for a channel when they have not opted out and have a contact for
it.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.scheduler.models import Subscriber
from shared import pii

MAX_FILTERS = 20
MAX_KEY = 64


def problems(audience: Any) -> list[str]:
    """Why ``audience`` is not a valid filter, as sentences naming the attribute."""
    if not isinstance(audience, dict):
        return ["audience must be an object of attribute filters"]
    out = []
    if len(audience) > MAX_FILTERS:
        out.append(f"audience may filter on at most {MAX_FILTERS} attributes")
    for key, value in audience.items():
        if not key or len(key) > MAX_KEY:
            out.append(f"audience attribute names must be 1-{MAX_KEY} characters")
        elif isinstance(value, list):
            if not value or not all(isinstance(v, str) for v in value):
                out.append(f"audience.{key} must be a text value or a non-empty list of them")
        elif not isinstance(value, str):
            out.append(f"audience.{key} must be a text value or a non-empty list of them")
    return out


def attribute(key: str):
    """An attribute's keyed hash, as text (json_extract on SQLite, ->> on PostgreSQL)."""
    return sa.cast(Subscriber.attribute_hashes[key].as_string(), sa.String)


def hashed(key: str, value):
    """``value`` as a bound parameter that is hashed when the statement runs, with the
    key of the engine it runs on (so a condition can be built without a session)."""
    return sa.bindparam(None, value, type_=pii.AttributeHashParam(key))


def conditions(tenant_id: str, channel: str, audience: dict, extra: dict | None = None) -> list:
    """SQL conditions selecting ``tenant_id``'s subscribers eligible on ``channel``.

    ``extra`` narrows further (an occurrence's ``{"round": "A"}``): both must match.
    """
    contact = Subscriber.phone if channel == "sms" else Subscriber.email
    where = [Subscriber.tenant_id == tenant_id, Subscriber.opted_out.is_(False),
             contact.is_not(None)]
    for filters in (audience, extra or {}):
        for key, value in sorted(filters.items()):
            where.append(attribute(key).in_([hashed(key, v) for v in value])
                         if isinstance(value, list) else attribute(key) == hashed(key, value))
    return where


def eligible(tenant_id: str, channel: str, audience: dict, extra: dict | None = None
             ) -> sa.Select:
    """The eligible subscribers, in id order (the order the ticker walks them)."""
    return (sa.select(Subscriber).where(*conditions(tenant_id, channel, audience, extra))
            .order_by(Subscriber.id))


def size(session, tenant_id: str, channel: str, audience: dict, extra: dict | None = None
         ) -> int:
    """How many subscribers the audience reaches now."""
    return session.scalar(sa.select(sa.func.count()).select_from(Subscriber)
                          .where(*conditions(tenant_id, channel, audience, extra))) or 0


def sizes_by(session, tenant_id: str, channel: str, audience: dict, key: str,
             values) -> dict[str, int]:
    """The audience counted per value of one attribute (per round, ``values`` the round
    codes: the values themselves are encrypted, so the scan counts their hashes)."""
    value = attribute(key)
    wanted = {pii.attribute_hash(session, key, v): v for v in values}
    rows = session.execute(sa.select(value, sa.func.count()).select_from(Subscriber)
                           .where(*conditions(tenant_id, channel, audience))
                           .group_by(value))
    return {wanted[h]: n for h, n in rows if h in wanted}
