"""An API keeps taking sends through a broker outage, and its events go out when it is back.

The platform runs on the real PostgreSQL and RabbitMQ, but reaches the broker through
a TCP proxy of this test's own (the shared RabbitMQ is never stopped).  With the proxy
cut, notify's /readyz stays 200 and says ``degraded`` (its Service keeps it: the
outbox holds what it would publish), a send is accepted and stored, and its events wait
in the outbox; with the proxy restored the relay publishes every one of them.
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.conftest import RABBIT_HOST, RABBIT_PORT, eventually
from tests.fakes.tcp_proxy import TcpProxy
from tests.integration.notify_api.test_notify_client_compatibility import SMS, VALUES, Council

pytestmark = pytest.mark.integration


def through(proxy: TcpProxy, rabbit_url: str) -> str:
    parts = urlsplit(rabbit_url)
    return urlunsplit(parts._replace(netloc=f"guest:guest@127.0.0.1:{proxy.port}"))


@pytest.fixture
def outage_platform(real_settings, rabbit_url):
    from services.embedded import Platform

    with TcpProxy((RABBIT_HOST, RABBIT_PORT)) as proxy:
        p = Platform(real_settings.with_(broker_url=through(proxy, rabbit_url)))
        p.migrate()
        p.start()
        try:
            yield p, proxy
        finally:
            p.stop()


def backlog(platform) -> int:
    return platform.notify.runtime.relay.backlog()[0]


def test_an_api_accepts_sends_with_the_broker_unreachable_and_publishes_them_after(
        outage_platform):
    platform, proxy = outage_platform
    url = platform.urls()["notify"]
    council = Council(platform, "ceredigion")
    tid = council.template(SMS)
    eventually(lambda: backlog(platform) == 0, message="tenant events published")
    ready = requests.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ok"

    proxy.cut()
    ready = requests.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 200, "a broker outage must not take the API out of service"
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error")

    ids = [council.client.send_sms_notification(f"07700 90011{n}", tid, personalisation=VALUES,
                                                reference=f"outage-{n}")["id"]
           for n in range(3)]
    for nid in ids:      # stored, and readable, while the broker is away
        assert council.client.get_notification_by_id(nid)["reference"].startswith("outage-")
    # their outcomes (the dispatcher needs no broker) wait in the outbox
    waiting = eventually(lambda: backlog(platform) >= len(ids) and backlog(platform),
                         timeout=30, message="events waiting in the outbox")
    assert waiting >= len(ids)

    proxy.restore()
    eventually(lambda: backlog(platform) == 0, timeout=60,
               message="the outbox drained to the broker once it was back")
    ready = requests.get(f"{url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
