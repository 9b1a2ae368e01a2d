"""The figures on /ops (and in /ops/data.json) come from where their truth is."""
from __future__ import annotations

import datetime as dt

import pytest
from ops_support import (
    ADMIN,
    add_notifications,
    add_tenant,
    notify_app,
    scheduler_metrics,
    set_provider_state,
)

from services.notify import ops
from shared import metrics, topology
from shared.db import utcnow
from tests.conftest import free_port


def table(data: dict, table_id: str) -> dict:
    (found,) = [t for t in data["tables"] if t["id"] == table_id]
    return found


def row(data: dict, table_id: str, header: str) -> dict[str, str]:
    """One row of a shown table as {column label: cell text}."""
    t = table(data, table_id)
    (cells,) = [r for r in t["rows"] if r[0]["text"] == header]
    return {c["label"]: cell["text"] for c, cell in zip(t["columns"], cells, strict=True)}


def alert_texts(data: dict) -> list[str]:
    return [a["text"] for a in data["alerts"]]


def put(notify, queue: str, count: int) -> None:
    with notify.runtime.bus.connection() as conn:
        for i in range(count):
            notify.runtime.bus.send_to_queue(conn, queue, '{"not": "an event"}', {},
                                             message_id=f"m{i}")


def test_every_queue_of_the_topology_is_shown_with_its_depth_and_dead_letters(notify, figures):
    put(notify, "notify.requests", 3)
    put(notify, "scheduler.events.dlq", 2)
    data = figures()
    assert [q["name"] for q in data["queues"]] == [q.name for q in topology.QUEUES]
    assert row(data, "queues", "notify.requests")["Ready"] == "3"
    assert row(data, "queues", "scheduler.events")["Dead-lettered"] == "2"
    assert row(data, "overview", "Dead-lettered messages")["Value"] == "2"
    # the in-memory broker cannot count consumers: shown as such, not as zero
    assert row(data, "queues", "notify.requests")["Consumers"] == "n/a"
    assert not any("Nothing is consuming" in text for text in alert_texts(data))


def test_a_dead_letter_is_a_problem_that_says_which_command_to_run(notify, figures):
    put(notify, "notify.callbacks.dlq", 1)
    assert ("notify.callbacks.dlq holds 1 dead-lettered message(s): "
            "hysbys dlq list --queue notify.callbacks") in alert_texts(figures())


def test_a_queue_trend_is_its_change_per_minute_between_refreshes(notify, figures, clock):
    put(notify, "notify.requests", 10)
    first = figures()
    assert row(first, "queues", "notify.requests")["Change per minute"] == "measuring"
    put(notify, "notify.requests", 20)
    clock.advance(15)
    assert row(figures(), "queues", "notify.requests")["Change per minute"] == "+80/min"


def test_provider_health_is_what_the_dispatchers_wrote(notify, figures):
    set_provider_state(notify, "twilio", "open", calls=40, errors=30, p50=812.4)
    set_provider_state(notify, "simulator", "closed", calls=100, errors=0, p50=0.4)
    data = figures()
    assert row(data, "providers", "twilio") == {
        "Provider": "twilio", "Circuit": "Open", "Calls (last minute)": "40", "Errors": "30",
        "Error rate": "75.0%", "Latency (median)": "812 ms", "Last report": "0 s ago"}
    (cell,) = [r[1] for r in table(data, "providers")["rows"] if r[0]["text"] == "twilio"]
    assert cell["tag"] == "red"
    assert data["alerts"][0] == {"level": "critical",
                                 "text": "Provider twilio: circuit open, sends are failing over"}


def test_a_closed_provider_failing_often_is_a_warning(notify, figures):
    set_provider_state(notify, "notify", "closed", calls=50, errors=20, p50=90.0)
    assert "Provider notify failed 40% of its calls in the last minute" in alert_texts(figures())


def test_volume_today_is_counted_per_tenant_by_status_and_leaves_out_yesterday(notify, figures):
    pembs = add_tenant(notify, "pembrokeshire")
    swansea = add_tenant(notify, "swansea-bay")
    add_notifications(notify, pembs, "delivered", 4)
    add_notifications(notify, pembs, "created", 2)
    add_notifications(notify, pembs, "permanent-failure", 1)
    add_notifications(notify, pembs, "technical-failure", 1)
    add_notifications(notify, swansea, "sending", 1)
    add_notifications(notify, swansea, "delivered", 50, created_at=utcnow() - dt.timedelta(days=2))
    data = figures()
    assert row(data, "tenants", "pembrokeshire") == {
        "Tenant": "pembrokeshire", "Requested": "8", "Created": "2", "Deferred": "0",
        "Sending": "0", "Sent": "0", "Delivered": "4", "Failed": "2", "Suppressed": "0"}
    assert row(data, "tenants", "swansea-bay")["Requested"] == "1"
    assert [r[0]["text"] for r in table(data, "tenants")["rows"]] == ["pembrokeshire", "swansea-bay"]
    assert data["totals_today"] == {"requested": 9, "sent": 5, "delivered": 4, "failed": 2}


def test_throughput_is_measured_from_todays_counts_between_refreshes(notify, figures, clock):
    tenant = add_tenant(notify, "ceredigion")
    figures()
    add_notifications(notify, tenant, "delivered", 120)
    clock.advance(60)
    data = figures()
    assert data["throughput_per_minute"]["delivered"] == pytest.approx(120)
    assert row(data, "overview", "Delivered per minute")["Value"] == "120/min"


def test_scheduler_lag_is_read_from_the_schedulers_metrics(figures):
    data = figures()
    assert data["scheduler"] == {"lag_seconds": 12.0, "error": None}
    assert row(data, "overview", "Scheduler lag")["Value"] == "12 s"


def test_a_scheduler_far_behind_is_a_critical_problem(notify):
    port = free_port()
    server = scheduler_metrics(port, lag_seconds=1500)
    try:
        client = notify_app(notify, f"http://127.0.0.1:{port}/metrics").test_client()
        data = client.get("/ops/data.json", headers=ADMIN).json
    finally:
        server.shutdown()
    assert {"level": "critical", "text": "Reminders are going out 25 min 0 s late"} in data["alerts"]


def test_an_unreachable_scheduler_shows_the_lag_as_unknown_not_an_error_page(notify):
    client = notify_app(notify, f"http://127.0.0.1:{free_port()}/metrics").test_client()
    resp = client.get("/ops/data.json", headers=ADMIN)
    assert resp.status_code == 200
    assert resp.json["scheduler"]["lag_seconds"] is None
    assert row(resp.json, "overview", "Scheduler lag")["Value"] == "unknown"
    assert any(t.startswith("Scheduler lag unknown: cannot read") for t in alert_texts(resp.json))


def test_a_broker_that_cannot_be_reached_is_reported_and_the_rest_still_shown(embedded_settings,
                                                                               scheduler_url):
    from services.notify.wiring import build
    from shared.bus import Bus

    svc = build(embedded_settings, bus=Bus("amqp://guest:guest@127.0.0.1:1//"))
    svc.runtime.migrate()
    tenant = add_tenant(svc, "conwy")
    add_notifications(svc, tenant, "sent", 2)
    data = notify_app(svc, scheduler_url).test_client().get("/ops/data.json", headers=ADMIN).json
    assert "Could not read the broker: OperationalError" in alert_texts(data)
    assert table(data, "queues")["rows"] == []
    assert row(data, "tenants", "conwy")["Sent"] == "2"


def test_an_outbox_that_stopped_publishing_is_a_critical_problem():
    figures = {"queues": [], "providers": [], "scheduler": {"lag_seconds": 0.0, "error": None},
               "outbox": {"service": "notify", "backlog": 40, "oldest_age_seconds": 900}}
    assert ops.alerts(figures, []) == [{
        "level": "critical",
        "text": "The notify outbox's oldest event is 15 min 0 s old: is the relay running?"}]


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (59.9, "59 s"), (61, "1 min 1 s"), (3600, "1 h 0 min"), (90061, "25 h 1 min")])
def test_durations_read_as_a_person_would_say_them(seconds, text):
    assert ops.duration(seconds) == text


def test_counters_that_fall_such_as_at_midnight_restart_their_rate(clock):
    rates = metrics.Rates(clock=clock)
    assert rates.observe({"sent": 100}, counters=True) == {"sent": None}
    clock.advance(2)
    assert rates.observe({"sent": 110}, counters=True) == {"sent": None}   # too soon to say
    clock.advance(28)
    assert rates.observe({"sent": 130}, counters=True) == {"sent": pytest.approx(60)}
    clock.advance(30)
    assert rates.observe({"sent": 3}, counters=True) == {"sent": None}


def test_rates_forget_samples_older_than_their_window(clock):
    rates = metrics.Rates(window=120, clock=clock)
    for depth in (0, 1000, 1000, 1000):
        rates.observe({"q": depth})
        clock.advance(60)
    assert rates.observe({"q": 1000}) == {"q": 0.0}


def test_the_page_shows_the_same_tables_as_the_json(notify, client):
    tenant = add_tenant(notify, "gwynedd")
    add_notifications(notify, tenant, "delivered", 1234)
    client.post("/ops/login", data={"token": "test-admin-token"})
    page = client.get("/ops").get_data(as_text=True)
    data = client.get("/ops/data.json").json
    for t in data["tables"]:
        assert f'<table class="ops-table" id="table-{t["id"]}"' in page
        assert f'<caption class="ops-visually-hidden">{t["caption"]}</caption>' in page
    assert '<th scope="row">gwynedd</th>' in page
    assert '<td class="ops-numeric">1,234</td>' in page
    assert 'aria-live="polite"' in page


def test_after_a_quiet_spell_with_no_one_looking_the_rate_is_measured_afresh(clock):
    rates = metrics.Rates(window=60, clock=clock)
    rates.observe({"q": 0})
    clock.advance(600)
    assert rates.observe({"q": 5000}) == {"q": None}
    clock.advance(30)
    assert rates.observe({"q": 5500}) == {"q": pytest.approx(1000)}
