"""The dispatcher on a real PostgreSQL: concurrent dispatchers (SKIP LOCKED claims and
the hand-off stamp) never send a notification twice; provider health is upserted."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from services.notify.dispatcher import Dispatcher
from services.notify.models import ProviderState
from tests.unit.notify_providers.providers_support import Clock, ScriptedProvider, make_harness, outage

pytestmark = pytest.mark.integration


@pytest.fixture
def harness_on_postgres(embedded_settings, pg_url):
    def _make(providers):
        harness = make_harness(embedded_settings.with_(database_url=pg_url), Clock(), providers,
                               failure_threshold=100)
        made.append(harness)
        return harness

    made = []
    yield _make
    for harness in made:
        harness.db.dispose()


def test_four_dispatchers_at_once_send_each_notification_exactly_once(harness_on_postgres):
    twilio = ScriptedProvider("twilio", ("sms",))
    h = harness_on_postgres({"twilio": twilio})
    tenant = h.tenant(["twilio"], capacity={"segments_per_second": 1000, "senders": 1})
    ids = {h.send(tenant, f"+4477009002{i:02d}") for i in range(60)}
    dispatchers = [Dispatcher(h.db, h.service.choose_providers, batch=9, chunk=4,
                              safeguards=h.dispatcher.guard) for _ in range(4)]
    threads = [threading.Thread(target=lambda d=d: [d.run_once() for _ in range(20)]) for d in dispatchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    sent = [m.notification_id for m in twilio.sent]
    assert sorted(sent) == sorted(ids), "every notification once, none twice"
    assert {h.row(i).status for i in ids} == {"sent"}


def test_provider_health_is_upserted_by_every_flush(harness_on_postgres):
    twilio = ScriptedProvider("twilio", ("sms",), outage())
    h = harness_on_postgres({"twilio": twilio})
    tenant = h.tenant(["twilio"])
    h.send(tenant)
    h.dispatcher.run_once()
    health, breakers = h.dispatcher.guard.health, h.dispatcher.guard.breakers

    health.flush(h.db, breakers)
    h.elapse_backoff()
    h.dispatcher.run_once()
    health.flush(h.db, breakers)

    with h.db.read() as session:
        [state] = session.scalars(sa.select(ProviderState)).all()
    assert (state.provider, state.recent_calls, state.recent_errors) == ("twilio", 2, 1)
