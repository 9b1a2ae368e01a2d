"""Claiming: which created notifications are sent next, fairly across tenants.

One transaction: ``deferred`` rows whose quiet hours are over become ``created``;
then due ``created`` rows, an equal share per tenant, urgent first.  *Admission*
leaves a row ``created`` (no attempt spent) when every provider it could go to has
an open circuit, when its first provider's lane is still handing off, or when its
sender's throttle is empty (the rest of that tenant's share then waits its turn).
Admitted rows become ``sending`` with ``attempts`` + 1, and the claim commits
before any provider is called.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notify import quiet_hours
from services.notify.dispatcher.lanes import remote
from services.notify.dispatcher.safeguards import Safeguards
from services.notify.models import Notification
from services.notify.providers.base import Provider
from shared.db import Database, utcnow
from shared.tenancy import Tenant

ProviderChooser = Callable[[Notification, Tenant], list[Provider]]

# The tenants with rows waiting, by a skip scan of the partial index
# ix_notifications_queue: one index probe per tenant, where DISTINCT would read every
# waiting row (100,000 on bin night) for every batch.  It includes a tenant whose rows
# all wait for a later ``not_before`` (a retry): its share of the batch then stays empty.
TENANTS_WITH_WORK = sa.text("""
    WITH RECURSIVE t(tenant_id) AS (
        SELECT min(tenant_id) FROM notifications WHERE status = 'created'
        UNION ALL
        SELECT (SELECT min(n.tenant_id) FROM notifications n
                WHERE n.status = 'created' AND n.tenant_id > t.tenant_id)
        FROM t WHERE t.tenant_id IS NOT NULL
    )
    SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL
""")


@dataclass
class Claim:
    """A notification claimed (``sending``), its tenant, and the providers to try in order."""

    row: Notification
    tenant: Tenant
    plan: list[Provider]


@dataclass
class Admission:
    """What admitting a row asks: the providers, their circuits, the lanes and throttle."""

    choose: ProviderChooser
    guard: Safeguards
    lane_busy: Callable[[str], bool]


def claim(db: Database, admission: Admission, batch: int) -> list[Claim]:
    """Mark up to ``batch`` due notifications ``sending`` and return them with their plans.

    Fairness: each tenant with work gets an equal share of the batch, its
    urgent notifications first, so one council's 100,000 bin reminders do
    not hold up another board's appointment reminder due now.
    """
    now = utcnow()
    due = sa.and_(Notification.status == "created",
                  sa.or_(Notification.not_before.is_(None), Notification.not_before <= now))
    with db.transaction() as session:
        quiet_hours.release_due(session, now)
        tenant_ids = session.scalars(TENANTS_WITH_WORK).all()
        if not tenant_ids:
            return []
        share = max(1, batch // len(tenant_ids))
        claims: list[Claim] = []
        circuits: dict[str, bool] = {}    # each provider's circuit asked once per claim
        tenants = {t.id: t for t in session.scalars(
            sa.select(Tenant).where(Tenant.id.in_(tenant_ids)))}
        # one flush of every claimed row at the end, not one per tenant (each query
        # below would otherwise flush the rows the tenant before it claimed)
        with session.no_autoflush:
            for tenant_id in tenant_ids:
                q = (sa.select(Notification).where(due, Notification.tenant_id == tenant_id)
                     .order_by(Notification.urgent.desc(), Notification.created_at)
                     .limit(share))
                if db.dialect == "postgresql":
                    q = q.with_for_update(skip_locked=True)
                claims.extend(admit(session, admission, session.scalars(q).all(),
                                    tenants.get(tenant_id), now, circuits))
        session.flush()
    return claims


def admit(session: Session, admission: Admission, rows: list[Notification], tenant: Tenant | None,
          now: dt.datetime, circuits: dict[str, bool]) -> list[Claim]:
    """The rows (one tenant's, in order) that may be sent now, marked ``sending``."""
    admitted = []
    for n in rows:
        plan = admission.choose(n, tenant) if tenant is not None else []
        usable = [p for p in plan
                  if not remote(p) or _available(session, admission.guard, p.name, circuits)]
        if plan and not usable:
            continue            # every provider's circuit is open: wait as created
        if usable and remote(usable[0]) and admission.lane_busy(usable[0].name):
            continue            # its provider's lane is still handing off: wait as created
        if usable and not _within_throttle(session, admission.guard, n, tenant, usable[0]):
            break               # the sender is at capacity: this tenant's rest waits its turn
        n.status, n.attempts, n.updated_at, n.handoff_at = "sending", n.attempts + 1, now, None
        admitted.append(Claim(n, tenant, usable))
    return admitted


def _available(session: Session, guard: Safeguards, name: str, circuits: dict[str, bool]) -> bool:
    if name not in circuits:
        circuits[name] = guard.breakers[name].available(session)
    return circuits[name]


def _within_throttle(session: Session, guard: Safeguards, n: Notification, tenant: Tenant,
                     first: Provider) -> bool:
    if n.channel != "sms" or not remote(first):
        return True
    capacity = tenant.setting("capacity") or {}
    rate = float(capacity.get("segments_per_second") or 10) * int(capacity.get("senders") or 1)
    key = (tenant.id, first.name, getattr(first, "sender", first.name))
    return guard.throttle.try_take(key, rate, n.fragment_count or 1, session=session)
