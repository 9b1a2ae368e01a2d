"""Fake Twilio and GOV.UK Notify served by a process of their own.

A fault test that kills the notify worker loses every counter inside it (the
simulator's ``hysbys_provider_calls_total`` dies with the process), so the
provider that counts calls must live elsewhere.  This module runs the fakes of
``tests/fakes`` in a separate process and adds, on each fake's own address:

* ``GET /_fake/stats`` — ``{"requests": n, "accepted": {notification id: calls},
  "received": [[unix seconds, notification id], ...]}``: every request the fake
  saw, how many times it *accepted* (201) each of our notifications (Twilio: the
  ``notification_id`` of the StatusCallback; Notify: the ``reference``), and when
  each accepted request reached it (by the fake's own clock, taken as the request
  arrived: a sender's rate is measured from these);
* ``POST /_fake/behave`` ``{"kind": "succeed" | "fail" | "slow" | "hang",
  "status": 500, "delay": 1.5}`` — the fake's behaviour from now on.

``python -m tests.faults.fake_providers`` prints one JSON line with both URLs
and the credentials a tenant PATCHes, then serves until stdin closes.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from tests.fakes.notify_server import FakeNotify
from tests.fakes.server import Request
from tests.fakes.twilio_server import FakeTwilio

CONTROL = "/_fake/"


class _Counting:
    """Mixin: per-notification counts of accepted sends, and the control endpoints."""

    def _setup_counts(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.received: list[tuple[float, str]] = []
        self.total = 0
        self._count_lock = threading.Lock()

    def notification_id(self, req: Request) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _respond(self, req: Request) -> tuple[int, dict]:
        if req.path.startswith(CONTROL):
            return self._control(req)
        arrived = time.time()
        with self._count_lock:
            self.total += 1
        status, payload = super()._respond(req)  # type: ignore[misc]
        if status == 201:
            with self._count_lock:
                self.accepted[self.notification_id(req)] += 1
                self.received.append((arrived, self.notification_id(req)))
        return status, payload

    def _control(self, req: Request) -> tuple[int, dict]:
        if req.path.startswith(CONTROL + "stats"):
            with self._count_lock:
                return 200, {"requests": self.total, "accepted": dict(self.accepted),
                             "received": sorted(self.received)}
        if req.path.startswith(CONTROL + "behave"):
            spec = json.loads(req.body or b"{}")
            kind = spec.get("kind", "succeed")
            if kind == "fail":
                self.fail(int(spec.get("status", 500)), {"code": 20500, "message": "fault test",
                                                         "status": int(spec.get("status", 500))})
            elif kind == "slow":
                self.slow(float(spec.get("delay", 1.0)))
            elif kind == "hang":
                self.hang()
            else:
                self.succeed()
            return 200, {"kind": kind}
        return 404, {}


class CountingTwilio(_Counting, FakeTwilio):
    def __init__(self):
        FakeTwilio.__init__(self, "AC" + uuid.uuid4().hex, uuid.uuid4().hex,
                            from_number="+447700900400")
        self._setup_counts()

    def notification_id(self, req: Request) -> str:
        callback = self.form(req).get("StatusCallback", "")
        return (parse_qs(urlparse(callback).query).get("notification_id") or ["?"])[0]


class CountingNotify(_Counting, FakeNotify):
    def __init__(self):
        FakeNotify.__init__(self)
        self._setup_counts()

    def notification_id(self, req: Request) -> str:
        return json.loads(req.body or b"{}").get("reference") or "?"


def main() -> int:
    # Keep-alive: the Twilio SDK and the Notify client reuse their connections, so
    # 20,000 sends do not open 20,000 sockets; without Nagle, the headers and the
    # body (two writes) do not wait 40 ms for a delayed ACK on every answer.
    BaseHTTPRequestHandler.protocol_version = "HTTP/1.1"
    BaseHTTPRequestHandler.disable_nagle_algorithm = True
    twilio, notify = CountingTwilio().start(), CountingNotify().start()
    print(json.dumps({"twilio": {"url": twilio.url, "credentials": twilio.credentials()},
                      "notify": {"url": notify.url, "credentials": notify.credentials()}}),
          flush=True)
    sys.stdin.read()          # serve until the test closes our stdin (or kills us)
    twilio.stop()
    notify.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
