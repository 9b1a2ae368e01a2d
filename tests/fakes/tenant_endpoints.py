"""A tenant's own system, as far as notify's delivery-status callbacks reach it: one HTTP
server whose paths are the tenants' URLs, and the setting-up those tests share."""
from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections import Counter

from services.notify import tenants as notify_tenants
from services.notify.models import Notification
from services.notify.templates import create_template
from shared import events
from tests.fakes.server import FakeServer, Request

T0 = dt.datetime(2026, 12, 3, 21, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


class TenantEndpoints(FakeServer):
    """Every tenant's delivery-status URL (one path each); ``answers`` sets the status
    answered for a notification id (default 200).  ``calls`` logs (notification id,
    status answered, path, Authorization header)."""

    def __init__(self):
        super().__init__()
        self.answers: dict[str, int] = {}
        self.calls: list[tuple[str, int, str, str]] = []
        self._calls_lock = threading.Lock()

    def answer(self, request: Request) -> tuple[int, dict]:
        nid = json.loads(request.body)["id"]
        status = self.answers.get(nid, 200)
        with self._calls_lock:
            self.calls.append((nid, status, request.path, request.headers.get("Authorization")))
        return status, {}

    def count(self, *, ok: bool | None = None) -> Counter:
        return Counter(nid for nid, status, _, _ in self.calls
                       if ok is None or (status < 400) == ok)


class World:
    """Three tenants: two with a delivery-status URL (each its token), one without."""

    def __init__(self, svc, endpoints: TenantEndpoints):
        self.svc = svc
        self.tenants: dict[str, str] = {}
        self.notifications: dict[str, Notification] = {}
        with svc.runtime.db.transaction() as session:
            for slug, url in (("aber", endpoints.url + "/aber"), ("bangor", endpoints.url + "/bangor"),
                              ("conwy", None)):
                config = {"quiet_hours": None}
                if url:
                    config.update(delivery_status_url=url,
                                  delivery_status_token=f"token-of-{slug}-0123456789")
                created = notify_tenants.create_tenant(session, svc.runtime.box, name=slug,
                                                       slug=slug, config=config)
                self.tenants[slug] = created.id
                self.template = create_template(session, created.id, {
                    "name": "t", "type": "sms", "body": {"en": "Hi", "cy": "Helo"}})

    def notification(self, slug: str, status: str = "delivered") -> Notification:
        n = Notification(id=str(uuid.uuid4()), tenant_id=self.tenants[slug],
                         template_id=self.template.id, template_version=1, key_type="live",
                         channel="sms", recipient="+447700900123", status=status, body="Hi",
                         reference=f"ref-{slug}", created_at=T0 - dt.timedelta(minutes=3),
                         sent_at=T0 - dt.timedelta(minutes=2), completed_at=T0 - dt.timedelta(minutes=1))
        with self.svc.runtime.db.transaction() as session:
            session.add(n)
        self.notifications[n.id] = n
        return n


def outcome_event(n: Notification) -> events.Event:
    kind = "delivered" if n.status == "delivered" else "failed"
    return events.make(f"notification.{kind}", n.tenant_id, notification_id=n.id,
                       status=n.status, channel="sms")


