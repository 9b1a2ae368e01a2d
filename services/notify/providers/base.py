"""The provider port and the base class that owns timing, logging and metrics.

A subclass implements :meth:`BaseProvider._send`; :meth:`BaseProvider.send`
wraps it the way GOV.UK Notify's ``SmsClient.send_sms`` wraps ``try_send_sms``.

A failed hand-off raises :class:`ProviderError`, whose :class:`Fault` says what
the dispatcher does next: fail over and retry later (``retryable``), or end the
notification with ``status``; whether the fault counts against the provider's
circuit breaker (``kind == "outage"``); and whether the recipient must be added
to the tenant's suppression list (Twilio's 21610).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from shared.metrics import METRICS

log = logging.getLogger(__name__)

# What went wrong, as the dispatcher needs to know it:
#   outage    the provider is down or slow (5xx, timeout, connection): retry, fail over,
#             and count it against the provider's circuit breaker
#   throttled the provider asks us to slow down (429): retry, fail over, no circuit count
#   config    this tenant's credentials or sender are wrong (401/403): retry, fail over,
#             so an operator who fixes them inside the retry budget loses nothing
#   rejected  this message can never be sent (invalid or opted-out recipient): final
KINDS = ("outage", "throttled", "config", "rejected")


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: str
    channel: str                 # "sms" | "email"
    to: str                      # E.164 or email address
    body: str
    subject: str | None = None
    sender: str | None = None    # sender ID / from number / from address
    status_callback: str | None = None
    reply_to: str | None = None          # email: the Reply-To the sender chose
    unsubscribe_url: str | None = None   # email: RFC 8058 one-click unsubscribe link


@dataclass(frozen=True)
class SendResult:
    """What the provider said at hand-off.

    ``status`` is ``sent`` (accepted; a receipt will follow) or, for providers
    that know at once (the simulator), a final status.
    """

    status: str
    reference: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ReceiptStatus:
    """A delivery receipt in our terms: the status, why, and whether to suppress."""

    status: str
    reason: str | None = None
    suppress: bool = False


@dataclass(frozen=True)
class Fault:
    """The verdict of a provider's error-mapping function (pure, table-tested)."""

    retryable: bool
    kind: str = "outage"
    status: str = "technical-failure"   # the final status when not retryable
    suppress: bool = False              # the recipient opted out at the provider

    @classmethod
    def outage(cls) -> Fault:
        return cls(True, "outage")

    @classmethod
    def throttled(cls) -> Fault:
        return cls(True, "throttled")

    @classmethod
    def config(cls) -> Fault:
        return cls(True, "config")

    @classmethod
    def rejected(cls, status: str = "permanent-failure", *, suppress: bool = False) -> Fault:
        return cls(False, "rejected", status, suppress)


class ProviderError(Exception):
    """A failed hand-off.  ``retryable`` errors may succeed later or elsewhere."""

    def __init__(self, message: str, *, retryable: bool, status: str = "technical-failure",
                 kind: str | None = None, suppress: bool = False):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.kind = kind or ("outage" if retryable else "rejected")
        self.suppress = suppress

    @classmethod
    def from_fault(cls, message: str, fault: Fault) -> ProviderError:
        return cls(message, retryable=fault.retryable, status=fault.status, kind=fault.kind,
                   suppress=fault.suppress)


class Provider(Protocol):
    """What the dispatcher needs of an adapter.

    ``sender`` names the sender a throttle is kept for (a from number, a
    Messaging Service, a from address); ``remote`` is False for the in-process
    simulator, which has no circuit breaker and no throttle.
    """

    name: str
    channels: tuple[str, ...]

    def send(self, message: OutgoingMessage) -> SendResult: ...


_CALLS_LOCK = threading.Lock()


@dataclass
class BaseProvider:
    name: str = "base"
    channels: tuple[str, ...] = ("sms",)
    calls: int = field(default=0, init=False)
    remote: ClassVar[bool] = True

    @property
    def sender(self) -> str:
        return self.name

    def send(self, message: OutgoingMessage) -> SendResult:
        """Hand ``message`` to the provider; times, logs and counts the call."""
        METRICS.provider_calls.labels(self.name).inc()
        started = time.perf_counter()
        with _CALLS_LOCK:      # two lanes may call one provider at once (failover)
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
