"""shared.logs.bound: the ids bound for a block of work are on every JSON line written
inside it, and gone (or back to the outer ones) after it."""
from __future__ import annotations

import json
import logging
import threading

from shared import logs


def line(**extra) -> dict:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "to 07700 900123", None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(logs.JsonFormatter().format(record))


def test_a_bound_block_puts_its_ids_on_every_line_and_takes_them_off_after():
    with logs.bound(correlation_id="c-1", tenant_id="t-1", notification_id="n-1"):
        inside = line()
    after = line()

    assert (inside["correlation_id"], inside["tenant_id"], inside["notification_id"]) == (
        "c-1", "t-1", "n-1")
    assert "900123" not in inside["message"], "still masked"
    assert not {"correlation_id", "tenant_id", "notification_id"} & set(after)


def test_an_inner_block_replaces_the_outer_ids_and_none_clears_one_for_the_block():
    with logs.bound(correlation_id="outer", notification_id="n-outer", event_id="e-1"):
        with logs.bound(correlation_id=None, notification_id="n-inner"):
            inner = line()
        outer = line()

    assert "correlation_id" not in inner, "a row without an id never shows the outer one"
    assert (inner["notification_id"], inner["event_id"]) == ("n-inner", "e-1")
    assert (outer["correlation_id"], outer["notification_id"]) == ("outer", "n-outer")


def test_what_a_log_call_passes_itself_wins_over_what_is_bound():
    with logs.bound(correlation_id="bound", notification_id="n-bound"):
        assert line(correlation_id="own", notification_id="n-own")["notification_id"] == "n-own"
        assert line(correlation_id="own")["correlation_id"] == "own"


def test_a_binding_stays_in_its_thread():
    seen = []
    with logs.bound(correlation_id="main-thread"):
        worker = threading.Thread(target=lambda: seen.append(line().get("correlation_id")))
        worker.start()
        worker.join()
    assert seen == [None], "a thread binds its own (the dispatcher's lanes do, per notification)"
