"""Tenants and their API keys, kept per process between requests.

Authenticating a call used to read the tenant row and all its key rows and decrypt
every key's secret, on every request.  This cache keeps, per tenant, a detached copy
of the tenant and its keys with their secrets decrypted, and checks it on every
request with one cheap primary-key query, the tenant's *stamp*:

    (revision, active, number of keys, number of revoked keys)

Every change notify makes to a tenant or its keys bumps ``revision`` (and announces
``tenant.changed``); a replica (inbound, scheduler) applies ``tenant.changed`` with the
new revision, and ``api_key.revoked`` sets ``revoked_at`` without touching the revision,
which the revoked-key count sees.  So a revocation stops the key at the next request in
every process of every service: in notify as soon as it commits, in a replica as soon
as its worker has applied either event.  Nothing has to be told to invalidate; an
entry whose stamp differs is simply read again.

Bounded (least recently used out first) and safe for gunicorn's threads.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

DEFAULT_SIZE = 2048

V = TypeVar("V")


@dataclass(frozen=True)
class CachedKey:
    id: str
    key_type: str
    scopes: tuple[str, ...]
    secret: str
    revoked: bool


@dataclass(frozen=True)
class CachedTenant:
    """What authentication needs of one tenant, as of ``stamp``.  ``tenant`` is a copy
    attached to no session: callers read it, never change it."""

    stamp: tuple[Any, ...]
    tenant: Any
    keys: tuple[CachedKey, ...]


class StampedCache(Generic[V]):
    """``key → value`` as of a *stamp*: a value is answered only while the caller's
    stamp (read from the database, cheaply) equals the one it was kept with.  At most
    ``size`` keys, least recently used out first; safe for gunicorn's threads.  Used for
    tenants and keys here, notify's templates (services/notify/templates.py) and
    inbound's reply configuration (services/inbound/reply_config.py)."""

    def __init__(self, size: int = DEFAULT_SIZE):
        self.size = size
        self._entries: OrderedDict[str, tuple[Any, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str, stamp: Any) -> V | None:
        """The value kept for ``key`` if it is as current as ``stamp`` (else None)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != stamp:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: str, stamp: Any, value: V) -> None:
        with self._lock:
            self._entries[key] = (stamp, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class TenantCache(StampedCache[CachedTenant]):
    """``tenant id → CachedTenant``, kept as of the tenant's stamp."""
