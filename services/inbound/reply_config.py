"""A tenant's reply configuration, kept per process between replies.

Every reply is read with the tenant's own keywords (``/api/keywords``), answered in
its own wording (``/api/reply-texts``) and routed by its own service types
(``/api/service-types``).  Reading them was three queries and three decodings per
reply (7% of the webhook's time in issue 16's profile).  This cache keeps, per
tenant, the decoded configuration and checks it on every reply with one query, the
tenant's *stamp*: the ``updated_at`` of each of its three rows (``None`` where it
uses the platform's).  Every save sets its row's ``updated_at``, so a change made by
any process of inbound is in force at the next reply every other process reads;
nothing has to be told to invalidate, as with :mod:`shared.tenant_cache`.

The same query answers whether the provider's reference was received before (a
provider retry), so the check costs the reply no round trip it did not already make.

Entries are shared by the threads of a process and never changed: the service types
are a read-only mapping.  Bounded, least recently used out first (the kernel's
:class:`~shared.tenant_cache.StampedCache`, as the tenants' and keys').
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.inbound import autoreplies, catalogue, keywords, reply_texts, vocabulary
from services.inbound.models import InboundMessage, KeywordSet, ReplyTextSet, ServiceTypeSet
from shared.tenant_cache import StampedCache

DEFAULT_SIZE = 1024

Stamp = tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]


@dataclass(frozen=True)
class ReplyConfig:
    """What a reply to one tenant is read, routed and answered with."""

    words: keywords.Vocabulary
    wording: autoreplies.Wording
    service_types: Mapping[str, catalogue.ServiceType]


def load(session: Session, tenant_id: str) -> ReplyConfig:
    """The tenant's configuration, read and decoded (three queries)."""
    return ReplyConfig(vocabulary.load(session, tenant_id), reply_texts.load(session, tenant_id),
                       MappingProxyType(catalogue.for_tenant(session, tenant_id)))


def _updated(model, tenant_id: str):
    return sa.select(model.updated_at).where(model.tenant_id == tenant_id).scalar_subquery()


class ReplyConfigs:
    """``tenant id → ReplyConfig`` as of its stamp (:class:`shared.tenant_cache.StampedCache`),
    at most ``size`` tenants."""

    def __init__(self, size: int = DEFAULT_SIZE):
        self.cache: StampedCache[ReplyConfig] = StampedCache(size)

    def check(self, session: Session, tenant_id: str, provider: str, reference: str
              ) -> tuple[bool, ReplyConfig | None]:
        """(received before?, the tenant's configuration); the configuration is None
        when the message was received before (nothing more is read for a retry)."""
        seen = sa.select(sa.func.count()).select_from(InboundMessage).where(
            InboundMessage.provider == provider,
            InboundMessage.provider_reference == reference).scalar_subquery()
        row = session.execute(sa.select(
            seen, _updated(KeywordSet, tenant_id), _updated(ReplyTextSet, tenant_id),
            _updated(ServiceTypeSet, tenant_id))).one()
        if row[0]:
            return True, None
        stamp: Stamp = (row[1], row[2], row[3])
        config = self.cache.get(tenant_id, stamp)
        if config is None:
            config = load(session, tenant_id)
            self.cache.put(tenant_id, stamp, config)
        return False, config
