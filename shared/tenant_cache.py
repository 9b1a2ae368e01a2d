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
from typing import Any

DEFAULT_SIZE = 2048


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


class TenantCache:
    """``tenant id → CachedTenant``, at most ``size`` tenants."""

    def __init__(self, size: int = DEFAULT_SIZE):
        self.size = size
        self._entries: OrderedDict[str, CachedTenant] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, tenant_id: str, stamp: tuple[Any, ...]) -> CachedTenant | None:
        """The entry for ``tenant_id`` if it is as current as ``stamp`` (else None)."""
        with self._lock:
            entry = self._entries.get(tenant_id)
            if entry is None or entry.stamp != stamp:
                self.misses += 1
                return None
            self._entries.move_to_end(tenant_id)
            self.hits += 1
            return entry

    def put(self, tenant_id: str, entry: CachedTenant) -> None:
        with self._lock:
            self._entries[tenant_id] = entry
            self._entries.move_to_end(tenant_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, tenant_id: str) -> None:
        with self._lock:
            self._entries.pop(tenant_id, None)

    def __len__(self) -> int:
        return len(self._entries)
