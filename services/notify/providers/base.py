"""The provider port and the base class that owns timing, logging and metrics.

A subclass implements :meth:`Provider._send`; :meth:`Provider.send` wraps it the
way GOV.UK Notify's ``SmsClient.send_sms`` wraps ``try_send_sms``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from shared.metrics import METRICS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: str
    channel: str                 # "sms" | "email"
    to: str                      # E.164 or email address
    body: str
    subject: str | None = None
    sender: str | None = None    # sender ID / from number / from address
    status_callback: str | None = None


@dataclass(frozen=True)
class SendResult:
    """What the provider said at hand-off.

    ``status`` is ``sent`` (accepted; a receipt will follow) or, for providers
    that know at once (the simulator), a final status.
    """

    status: str
    reference: str | None = None
    reason: str | None = None


class ProviderError(Exception):
    """A failed hand-off.  ``retryable`` errors may succeed later or elsewhere."""

    def __init__(self, message: str, *, retryable: bool, status: str = "technical-failure"):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class Provider(Protocol):
    name: str
    channels: tuple[str, ...]

    def send(self, message: OutgoingMessage) -> SendResult: ...


@dataclass
class BaseProvider:
    name: str = "base"
    channels: tuple[str, ...] = ("sms",)
    calls: int = field(default=0, init=False)

    def send(self, message: OutgoingMessage) -> SendResult:
        started = time.perf_counter()
        self.calls += 1
        try:
            result = self._send(message)
        except ProviderError as exc:
            METRICS.provider_latency.labels(self.name, "error").observe(time.perf_counter() - started)
            METRICS.provider_errors.labels(self.name, "retryable" if exc.retryable else "final").inc()
            log.warning("provider %s refused %s: %s", self.name, message.channel, exc,
                        extra={"notification_id": message.notification_id})
            raise
        METRICS.provider_latency.labels(self.name, "ok").observe(time.perf_counter() - started)
        return result

    def _send(self, message: OutgoingMessage) -> SendResult:  # pragma: no cover - abstract
        raise NotImplementedError
