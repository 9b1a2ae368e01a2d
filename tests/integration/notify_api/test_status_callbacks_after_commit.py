"""Through RabbitMQ and PostgreSQL: a batch of outcomes reaches the notify worker, the
callbacks are recorded in its inbox transaction and sent after commit by its sender loop;
one tenant's 500 leaves every other callback delivered exactly once."""
from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import sqlalchemy as sa

from services.notify.models import StatusCallback
from services.notify.wiring import build
from shared import topology
from shared.bus import OutgoingMessage
from tests.conftest import eventually
from tests.fakes.tenant_endpoints import T0, Clock, TenantEndpoints, World, outcome_event

pytestmark = pytest.mark.integration
RETRY_AFTER = dt.timedelta(minutes=5)


def test_one_failing_callback_never_resends_the_others_through_the_worker(real_settings):
    svc = build(real_settings)
    svc.runtime.migrate()
    clock = Clock(T0)
    svc.clock = clock
    svc.callbacks.delay = lambda attempt: RETRY_AFTER
    with TenantEndpoints() as endpoints:
        world = World(svc, endpoints)
        notes = [world.notification(slug) for slug in ("aber", "bangor", "aber", "aber", "bangor")]
        failing = notes[2]
        endpoints.answers[failing.id] = 500
        batch = [outcome_event(n) for n in notes] + [outcome_event(world.notification("conwy"))]
        with svc.runtime.bus.connection() as conn:   # queued before the worker starts: one batch
            svc.runtime.bus.declare(conn, [topology.queue_spec("notify.callbacks")])
            svc.runtime.bus.publish(conn, [OutgoingMessage(str(e.id), e.type, e.to_json())
                                           for e in batch])
        background = svc.background(dispatcher=False)
        background.start()
        try:
            assert background.wait_ready()
            others = [n.id for n in notes if n is not failing]

            def settled():
                with svc.runtime.db.read() as session:
                    rows = session.scalars(sa.select(StatusCallback)).all()
                return len(rows) == 5 and sum(r.delivered_at is not None for r in rows) == 4 \
                    and any(r.last_error == "HTTP 500" for r in rows)
            eventually(settled, message="four delivered, the failing one waiting to retry")
            assert endpoints.count(ok=True) == Counter({nid: 1 for nid in others})
            assert endpoints.count(ok=False) == Counter({failing.id: 1})

            del endpoints.answers[failing.id]
            clock.advance(RETRY_AFTER)
            svc.callbacks.nudge.set()
            eventually(lambda: endpoints.count(ok=True)[failing.id] == 1,
                       message="the failing callback delivered once the tenant recovered")
            assert endpoints.count(ok=True) == Counter({nid: 1 for nid in others + [failing.id]})
            assert endpoints.problems == []
        finally:
            background.stop()
            svc.runtime.db.dispose()
