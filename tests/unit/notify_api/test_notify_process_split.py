"""`hysbys worker notify --no-dispatcher` and `hysbys dispatcher`: together, all of it once."""
from __future__ import annotations

from services.cli import build_parser
from services.notify.wiring import build


def loop_names(bg) -> set[str]:
    return {getattr(loop, "__qualname__", getattr(loop, "__name__", "")) for loop in bg.loops}


def test_the_two_processes_split_the_work_without_overlap(embedded_settings):
    svc = build(embedded_settings)
    everything = svc.background()
    consumers = svc.background(dispatcher=False)
    dispatcher = svc.background(consumers=False)

    assert "Dispatcher.run_forever" in loop_names(everything)
    assert "Dispatcher.run_forever" not in loop_names(consumers)
    assert "Dispatcher.run_forever" in loop_names(dispatcher)
    assert set(consumers.handlers) == set(everything.handlers) == {
        "notify.requests", "notify.callbacks", "notify.events"}
    assert dispatcher.handlers == {}                 # it consumes nothing
    # each has a relay: the dispatcher publishes the events it records itself
    assert sum("Relay.run_forever" in loop_names(b) for b in (consumers, dispatcher)) == 2


def test_the_cli_offers_both():
    parser = build_parser()
    assert parser.parse_args(["worker", "notify", "--no-dispatcher"]).no_dispatcher is True
    assert parser.parse_args(["worker", "notify"]).no_dispatcher is False
    assert parser.parse_args(["dispatcher"]).func.__name__ == "cmd_dispatcher"
