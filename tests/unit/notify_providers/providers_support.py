"""Helpers for the provider, dispatcher and receipt tests (unit and integration).

:class:`Harness` is the notify service, migrated, with no threads running:
tests drive the dispatcher by hand (``run_once``, ``sweep``) with an injected
:class:`Clock` for circuit breakers and throttles.  :class:`ScriptedProvider`
is the hand-written fake of our own provider port.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass

import sqlalchemy as sa

from services.notify import tenants
from services.notify.dispatcher import RetryPolicy, Safeguards
from services.notify.models import Notification, Template
from services.notify.providers.base import BaseProvider, OutgoingMessage, ProviderError, SendResult
from services.notify.providers.health import Breakers, HealthBoard
from services.notify.providers.throttle import Throttle
from services.notify.sending import SendRequest, accept
from services.notify.templates import create_template
from services.notify.wiring import NotifyService, build
from shared import events
from shared.outbox import OutboxRow
from shared.tenancy import Tenant


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedProvider(BaseProvider):
    """A provider that answers from a script — SendResults, exceptions to raise, or callables
    of the message — and then ``sent``."""

    def __init__(self, name: str, channels: tuple[str, ...] = ("sms", "email"), *script):
        super().__init__(name=name, channels=channels)
        self.script = deque(script)
        self.sent: list[OutgoingMessage] = []
        self._refs = itertools.count(1)
        self._lock = threading.Lock()   # several dispatcher threads may share one

    def then(self, *answers) -> ScriptedProvider:
        self.script.extend(answers)
        return self

    def _send(self, message: OutgoingMessage) -> SendResult:
        with self._lock:
            self.sent.append(message)
            answer = self.script.popleft() if self.script else SendResult("sent", None)
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            answer = answer(message)
        return SendResult(answer.status, answer.reference or f"{self.name}-{next(self._refs)}",
                          answer.reason)


def outage(message: str = "503 from upstream") -> ProviderError:
    return ProviderError(message, retryable=True, kind="outage")


@dataclass
class Harness:
    service: NotifyService
    clock: Clock

    @property
    def db(self):
        return self.service.runtime.db

    @property
    def dispatcher(self):
        return self.service.dispatcher

    def tenant(self, providers: list[str], **config) -> str:
        with self.db.transaction() as session:
            created = tenants.create_tenant(session, self.service.runtime.box, name="Cyngor",
                                            slug=f"t-{uuid.uuid4().hex[:8]}",
                                            config={"providers": providers, "quiet_hours": None,
                                                    **config})
            create_template(session, created.id, {"name": "sms", "type": "sms",
                                                  "body": {"en": "Bins out ((day))",
                                                           "cy": "Biniau allan ((day))"}})
        return created.id

    def send(self, tenant_id: str, to: str = "+447700900123", *, key_type: str = "live",
             body_day: str = "tonight") -> str:
        with self.db.transaction() as session:
            tenant = session.get(Tenant, tenant_id)
            template_id = session.scalars(sa.select(Template.id).where(
                Template.tenant_id == tenant_id, Template.name == "sms")).one()
            n = accept(session, tenant, SendRequest(channel="sms", template_id=template_id,
                                                    recipient=to, personalisation={"day": body_day},
                                                    language="en", key_type=key_type))
            return n.id

    def row(self, notification_id: str) -> Notification:
        with self.db.read() as session:
            return session.get(Notification, notification_id)

    def elapse_backoff(self) -> None:
        """Every waiting retry is due now (the database is the delay queue)."""
        with self.db.transaction() as session:
            session.execute(sa.update(Notification).where(Notification.status == "created")
                            .values(not_before=None))

    def events(self, event_type: str) -> list[dict]:
        with self.db.read() as session:
            rows = session.scalars(sa.select(OutboxRow).where(OutboxRow.event_type == event_type)
                                   .order_by(OutboxRow.seq)).all()
        return [b for r in rows for b in events.expand_body(json.loads(r.body))]

    def statuses(self, notification_id: str) -> list[str]:
        return [e["data"]["status"] for e in self.events_for(notification_id)]

    def events_for(self, notification_id: str) -> list[dict]:
        with self.db.read() as session:
            rows = session.scalars(sa.select(OutboxRow).order_by(OutboxRow.seq)).all()
        bodies = [b for r in rows for b in events.expand_body(json.loads(r.body))]
        return [b for b in bodies if b["data"].get("notification_id") == notification_id]

    def age(self, notification_id: str, **column_ages) -> None:
        """Move the row's timestamps into the past (a crash long ago)."""
        past = {col: dt.datetime.now(dt.UTC) - age for col, age in column_ages.items()}
        with self.db.transaction() as session:
            session.execute(sa.update(Notification).where(Notification.id == notification_id)
                            .values(**past))


def make_harness(settings, clock: Clock, providers: dict | None = None, *,
                 allowed=("simulator", "twilio", "notify", "smtp"), max_attempts: int = 3,
                 failure_threshold: int = 3, cooldown: float = 30.0) -> Harness:
    """The notify service on ``settings`` with the given providers and a fast retry policy."""
    guard = Safeguards(retry=RetryPolicy(max_attempts=max_attempts, base_delay=1.0, max_delay=5.0),
                       breakers=Breakers(failure_threshold, cooldown, clock=clock),
                       throttle=Throttle(clock=clock), health=HealthBoard(clock=clock))
    svc = build(settings.with_(allowed_providers=allowed), providers=providers or {}, safeguards=guard)
    svc.runtime.migrate()
    return Harness(svc, clock)
