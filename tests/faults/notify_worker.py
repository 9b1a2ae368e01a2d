"""``hysbys worker notify`` with what a fault test needs, as its own process.

The same composition as :func:`services.cli.cmd_worker`, plus two things the
CLI cannot be told yet (see docs/reliability.md, "What the fault tests need"):

* ``HYSBYS_FAULT_TWILIO_URL`` points the Twilio adapter at a fake
  (``TwilioFactory(base_url=…)``); ``HYSBYS_FAULT_PROVIDER_TIMEOUT`` is its
  client timeout (default 10 s, as in production);
* ``HYSBYS_FAULT_STALE_AFTER`` / ``HYSBYS_FAULT_SWEEP_EVERY`` shorten the
  sweeper's 10-minute wait, so a hand-off interrupted by a SIGKILL is settled
  within a test run instead of ten minutes later.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading

from services.notify import wiring
from services.notify.dispatcher import Safeguards
from services.notify.providers.govuk_notify import GovukNotifyFactory
from services.notify.providers.twilio import TwilioFactory
from shared import logs
from shared.config import Settings


def _safeguards() -> Safeguards:
    return Safeguards(
        stale_after=dt.timedelta(seconds=float(os.environ.get("HYSBYS_FAULT_STALE_AFTER", "600"))),
        sweep_every=float(os.environ.get("HYSBYS_FAULT_SWEEP_EVERY", "30")))


def _providers() -> dict:
    timeout = float(os.environ.get("HYSBYS_FAULT_PROVIDER_TIMEOUT", "10"))
    providers: dict = {"notify": GovukNotifyFactory(timeout=timeout)}
    if os.environ.get("HYSBYS_FAULT_TWILIO_URL"):
        providers["twilio"] = TwilioFactory(base_url=os.environ["HYSBYS_FAULT_TWILIO_URL"],
                                            timeout=timeout)
    return providers


def main() -> int:
    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.log_json)
    svc = wiring.build(settings, providers=_providers(), safeguards=_safeguards())
    bg = svc.background()
    with svc.runtime.bus.connection() as conn:
        svc.runtime.bus.declare(conn)
    bg.start()
    if settings.metrics_port:
        from prometheus_client import start_http_server

        from shared.metrics import METRICS

        start_http_server(settings.metrics_port, addr=settings.http_host, registry=METRICS.registry)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print("fault-test notify worker running", flush=True)
    while not stop.wait(0.5):
        pass
    bg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
