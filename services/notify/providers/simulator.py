"""The simulator: GOV.UK Notify's test numbers and addresses, answered in-process.

Used by ``test`` API keys (which never leave the platform), by the embedded
platform, and by the benchmarks, which read :attr:`calls` to prove exactly one
hand-off per notification.
"""
from __future__ import annotations

import itertools
import threading
import uuid
from collections import deque

from services.notify.providers.base import BaseProvider, OutgoingMessage, ProviderError, SendResult
from shared.metrics import METRICS

KEPT = 10_000   # the newest messages, for tests and the demo; older ones are dropped

TEMPORARY_FAILURE = {"+447700900003", "temp-fail@simulator.notify"}
PERMANENT_FAILURE = {"+447700900002", "perm-fail@simulator.notify"}


class Simulator(BaseProvider):
    remote = False   # in-process: no circuit breaker, no throttle

    def __init__(self):
        super().__init__(name="simulator", channels=("sms", "email"))
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.sent: deque[OutgoingMessage] = deque(maxlen=KEPT)
        self.keep_messages = True

    def send(self, message: OutgoingMessage) -> SendResult:
        with self._lock:
            self.calls += 1
            if self.keep_messages:
                self.sent.append(message)
        METRICS.provider_calls.labels(self.name).inc()
        return self._send(message)

    def _send(self, message: OutgoingMessage) -> SendResult:
        to = message.to.lower()
        ref = f"sim-{uuid.uuid4().hex[:16]}"
        if to in TEMPORARY_FAILURE:
            return SendResult("temporary-failure", ref, "simulated temporary failure")
        if to in PERMANENT_FAILURE:
            return SendResult("permanent-failure", ref, "simulated permanent failure")
        if to == "+447700900500":
            raise ProviderError("simulated provider outage", retryable=True)
        return SendResult("delivered", ref)

    def messages_to(self, to: str) -> list[OutgoingMessage]:
        with self._lock:
            return [m for m in self.sent if m.to == to]
