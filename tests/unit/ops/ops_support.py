"""Helpers for the operators' tests: a notify service on SQLite with /ops and /open-data
registered, tenants made the way the admin API makes them, and rows written straight
into notify's own tables (the tables are the interface the figures are read from)."""
from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server
from werkzeug.serving import make_server

from services.notify import ops, tenants
from services.notify.models import BulkJob, Notification, ProviderState, ReceivedText, Suppression
from services.notify.wiring import NotifyService
from shared.db import utcnow
from shared.metrics import Metrics

ADMIN = {"Authorization": "Bearer test-admin-token"}


@dataclass
class Tenant:
    id: str
    slug: str


def notify_app(svc: NotifyService, scheduler_metrics_url: str, **board_options):
    """notify's app, its /ops board reading the scheduler's metrics at ``scheduler_metrics_url``."""
    return svc.create_app(ops_board=ops.OpsBoard(svc.runtime, scheduler_metrics_url,
                                                 **board_options))


def add_tenant(svc: NotifyService, slug: str, **config) -> Tenant:
    with svc.runtime.db.transaction() as session:
        created = tenants.create_tenant(session, svc.runtime.box, name=slug.title(), slug=slug,
                                        config=config or None)
    return Tenant(created.id, created.slug)


def add_notifications(svc: NotifyService, tenant: Tenant, status: str, count: int = 1, *,
                      created_at: dt.datetime | None = None, key_type: str = "live") -> list[str]:
    ids = []
    with svc.runtime.db.transaction() as session:
        for _ in range(count):
            n = Notification(id=str(uuid.uuid4()), tenant_id=tenant.id,
                             template_id=str(uuid.uuid4()), template_version=1,
                             key_type=key_type, channel="sms", recipient="+447700900123",
                             body="Your bins go out tomorrow", status=status,
                             created_at=created_at or utcnow(), updated_at=utcnow())
            session.add(n)
            ids.append(n.id)
    return ids


def add_reply(svc: NotifyService, tenant: Tenant, created_at: dt.datetime) -> str:
    with svc.runtime.db.transaction() as session:
        row = ReceivedText(id=str(uuid.uuid4()), tenant_id=tenant.id, user_number="+447700900123",
                           notify_number="+447700900999", content="MISSED", created_at=created_at)
        session.add(row)
    return row.id


def add_opt_out(svc: NotifyService, tenant: Tenant, created_at: dt.datetime,
                recipient: str = "+447700900123") -> None:
    with svc.runtime.db.transaction() as session:
        session.add(Suppression(tenant_id=tenant.id, channel="sms", recipient=recipient,
                                source="reply", created_at=created_at))


def add_bulk_job(svc: NotifyService, tenant: Tenant, created_at: dt.datetime) -> str:
    with svc.runtime.db.transaction() as session:
        job = BulkJob(id=str(uuid.uuid4()), tenant_id=tenant.id, template_id=str(uuid.uuid4()),
                      channel="sms", errors=[{"row": 2, "recipient": "+447700900123"}],
                      created_at=created_at)
        session.add(job)
    return job.id


def set_provider_state(svc: NotifyService, provider: str, circuit: str, calls: int, errors: int,
                       p50: float | None, updated_at: dt.datetime | None = None) -> None:
    with svc.runtime.db.transaction() as session:
        session.merge(ProviderState(provider=provider, circuit=circuit, recent_calls=calls,
                                    recent_errors=errors, latency_p50_ms=p50,
                                    updated_at=updated_at or utcnow()))


def serve(app, port: int):
    """Serve a WSGI app on 127.0.0.1:port in a thread; call .shutdown() when done."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def scheduler_metrics(port: int, lag_seconds: float):
    """The scheduler's /metrics as the scheduler exposes it (our Metrics class, its own registry)."""
    registry = CollectorRegistry()
    Metrics(registry).scheduler_lag.set(lag_seconds)
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    return server


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
