"""Every queue has a consumer and every handler a queue (STYLE.md practice 9)."""
from __future__ import annotations

import pytest

from shared import topology
from shared.events import EVENT_SCHEMAS


def service_routes(service: str) -> dict:
    from services.inbound import handlers as inbound
    from services.notify import handlers as notify
    from services.scheduler import handlers as scheduler

    return {"notify": notify, "inbound": inbound, "scheduler": scheduler}[service].routes()


@pytest.mark.parametrize("service", ["notify", "inbound", "scheduler"])
def test_each_event_type_a_service_handles_is_bound_to_one_of_its_queues(service):
    bound = {t for q in topology.queues_for(service) for t in q.event_types}
    assert set(service_routes(service)) == bound


@pytest.mark.parametrize("spec", topology.QUEUES, ids=lambda q: q.name)
def test_every_queue_binding_names_a_known_event_type_with_a_handler(spec):
    routes = service_routes(spec.service)
    for event_type in spec.event_types:
        assert event_type in EVENT_SCHEMAS
        assert routes[event_type], f"{spec.name} binds {event_type} but nothing handles it"


def test_queue_names_follow_the_one_rule():
    for spec in topology.QUEUES:
        service, _, purpose = spec.name.partition(".")
        assert service == spec.service and purpose and spec.dlq == spec.name + ".dlq"
