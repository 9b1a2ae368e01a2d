"""``hysbys status`` prints the /ops figures, once or watching, from notify's /ops/data.json."""
from __future__ import annotations

import argparse
import io
import json

import pytest
from ops_support import add_notifications, add_tenant, serve, set_provider_state

from services import status
from tests.conftest import free_port


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    status.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture
def running(app, embedded_settings):
    """notify's app served on the settings' notify port, as `hysbys status` expects it."""
    server = serve(app, embedded_settings.ports["notify"])
    yield embedded_settings
    server.shutdown()


class NoSleep:
    def __init__(self):
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_status_prints_the_problems_and_every_table_of_the_page(notify, running):
    tenant = add_tenant(notify, "pembrokeshire")
    add_notifications(notify, tenant, "delivered", 1500)
    set_provider_state(notify, "twilio", "open", calls=12, errors=12, p50=None)
    out = io.StringIO()
    assert status.run(running, args(), out=out) == 0
    text = out.getvalue()
    assert text.startswith(f"Hysbys status — http://127.0.0.1:{running.ports['notify']} — ")
    assert "!! Provider twilio: circuit open, sends are failing over" in text
    for caption in ("At a glance", "Queues", "Providers", "Volume today, by tenant"):
        assert f"\n{caption}\n" in text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("  pembrokeshire")]
    assert line.split() == ["pembrokeshire", "1,500", "0", "0", "0", "0", "1,500", "0", "0"]


def test_numbers_are_right_aligned_under_their_headings(notify, running):
    out = io.StringIO()
    status.run(running, args(), out=out)
    lines = out.getvalue().splitlines()
    header = lines.index("Queues") + 1
    ready_end = lines[header].index("Ready") + len("Ready")
    assert lines[header + 2][:ready_end].endswith("0")


def test_json_prints_the_figures_as_served(running):
    out = io.StringIO()
    assert status.run(running, args("--json"), out=out) == 0
    data = json.loads(out.getvalue())
    assert {"queues", "providers", "scheduler", "tenants_today", "alerts", "tables"} <= set(data)


def test_watch_refreshes_every_n_seconds_and_says_how_to_stop(running):
    out, sleep = io.StringIO(), NoSleep()
    assert status.run(running, args("--watch", "2", "--count", "3"), out=out, sleep=sleep) == 0
    text = out.getvalue()
    assert text.count("Hysbys status — ") == 3
    assert "Refreshing every 2 s (update 3); Ctrl-C to stop." in text
    assert sleep.slept == [2.0, 2.0]


def test_a_wrong_admin_token_is_a_clear_error(running, capsys):
    assert status.run(running.with_(admin_token="wrong"), args()) == 2
    assert "refused the admin token (HTTP 403); check HYSBYS_ADMIN_TOKEN" in capsys.readouterr().err


def test_a_notify_that_is_not_running_is_a_clear_error(embedded_settings, capsys):
    settings = embedded_settings.with_(ports={**embedded_settings.ports, "notify": free_port()})
    assert status.run(settings, args()) == 2
    assert "is notify running? Point --url at it." in capsys.readouterr().err


def test_watching_carries_on_while_notify_is_down(embedded_settings):
    out = io.StringIO()
    url = f"http://127.0.0.1:{free_port()}"
    assert status.run(embedded_settings, args("--url", url, "--watch", "--count", "2"), out=out,
                      sleep=NoSleep()) == 0
    assert out.getvalue().count(f"hysbys: cannot reach {url}/ops/data.json") == 2
