"""The dispatchers' shared state in the notify database (used when no Redis is configured).

* ``throttle_buckets``: one token bucket per sender (tenant, provider, sender).
* ``circuit_breakers``: one circuit per provider name.

Times are Unix seconds from the dispatchers' clocks (floats): the state machines
compare them with each other, never with a database timestamp.
"""
from __future__ import annotations

import sqlalchemy as sa

from services.notify.models import Base

throttle_buckets = sa.Table(
    "throttle_buckets", Base.metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("rate", sa.Float, nullable=False),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("stamp", sa.Float, nullable=False),
)

circuit_breakers = sa.Table(
    "circuit_breakers", Base.metadata,
    sa.Column("provider", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False, server_default="closed"),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("opened_at", sa.Float, nullable=False, server_default="0"),
    sa.Column("trial_until", sa.Float, nullable=False, server_default="0"),
)
