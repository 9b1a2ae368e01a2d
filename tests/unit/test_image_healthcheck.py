"""The image's HEALTHCHECK probes whichever role the container runs."""
from __future__ import annotations

from services.healthcheck import probe_port


def test_an_api_is_probed_on_its_port(embedded_settings):
    settings = embedded_settings.with_(ports={"notify": 8001, "inbound": 8002, "scheduler": 8003})
    assert probe_port(["/usr/local/bin/python", "/usr/local/bin/hysbys", "serve", "inbound"],
                      settings) == 8002
    assert probe_port(["hysbys", "serve", "notify", "--workers", "4"], settings) == 8001


def test_a_worker_dispatcher_or_ticker_is_probed_on_the_metrics_port(embedded_settings):
    settings = embedded_settings.with_(metrics_port=9100)
    for argv in (["hysbys", "worker", "notify", "--no-dispatcher"], ["hysbys", "dispatcher"],
                 ["python", "-m", "services.cli", "ticker"]):
        assert probe_port(argv, settings) == 9100


def test_a_one_off_command_or_a_worker_without_a_metrics_port_has_nothing_to_probe(
        embedded_settings):
    assert probe_port(["hysbys", "db", "upgrade"], embedded_settings) is None
    assert probe_port(["hysbys", "worker", "inbound"], embedded_settings.with_(metrics_port=None)) \
        is None
