"""``hysbys dlq purge`` on RabbitMQ: a dry run unless --yes, only the ids asked for (the
rest stay, in order), one queue and only a known one, and an audit line without bodies."""
from __future__ import annotations

import json
import logging
import uuid

import pytest

from services import cli
from shared.bus import Bus

QUEUE = "notify.requests"
PHONE = "07700900123"


@pytest.fixture(autouse=True)
def _restore_logging():
    """``hysbys dlq`` configures the root logger, as every command does: undo it after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def broker(rabbit_url, tmp_path, monkeypatch) -> Bus:
    """A throwaway vhost with the topology declared, and the CLI's environment pointing at it."""
    monkeypatch.setenv("HYSBYS_BROKER_URL", rabbit_url)
    monkeypatch.setenv("HYSBYS_VAR_DIR", str(tmp_path))
    bus = Bus(rabbit_url)
    with bus.connection() as conn:
        bus.declare(conn)
    return bus


@pytest.fixture
def parked(broker) -> list[str]:
    """Three dead letters in notify.requests.dlq, as the worker leaves them; their ids in order."""
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with broker.connection() as conn:
        for n, message_id in enumerate(ids):
            body = json.dumps({"id": message_id, "type": "notification.requested",
                               "data": {"recipient": PHONE, "personalisation": {"n": n}}})
            broker.send_to_queue(conn, QUEUE + ".dlq", body,
                                 {"x-error": f"PermanentError: bad {n}", "x-retries": 8},
                                 message_id=message_id)
    return ids


def hysbys(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["dlq", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def dead_letters(capsys) -> list[str]:
    """The ids in notify.requests.dlq, in the queue's order (by ``hysbys dlq list``)."""
    code, out, _ = hysbys(capsys, "list", "--queue", QUEUE, "--json")
    assert code == 0
    return [row["id"] for row in json.loads(out)]


@pytest.mark.integration
def test_without_yes_it_says_what_would_go_removes_nothing_and_exits_1(parked, capsys, caplog):
    code, out, err = hysbys(capsys, "purge", "--queue", QUEUE)
    assert code == 1
    assert all(message_id in out for message_id in parked)
    assert "notification.requested" in out
    assert "would remove 3 message(s) from notify.requests.dlq" in out and "--yes" in out
    assert dead_letters(capsys) == parked
    assert not [r for r in caplog.records if r.name == "services.dlq"], "a dry run is not audited"


@pytest.mark.integration
def test_a_purge_by_id_removes_only_that_one_and_leaves_the_rest_in_order(parked, capsys,
                                                                         caplog):
    code, out, _ = hysbys(capsys, "purge", "--queue", QUEUE, "--message-id", parked[1], "--yes")
    assert code == 0
    assert "removed 1 message(s) from notify.requests.dlq" in out
    assert parked[1] in out and parked[0] not in out
    assert dead_letters(capsys) == [parked[0], parked[2]]
    audit = [r for r in caplog.records if r.name == "services.dlq"]
    assert [r.levelno for r in audit] == [logging.WARNING]
    assert "notify.requests.dlq" in audit[0].getMessage() and "1 message" in audit[0].getMessage()


@pytest.mark.integration
def test_a_whole_queue_purge_empties_it_and_logs_one_line_without_bodies(parked, capsys, caplog):
    code, out, _ = hysbys(capsys, "purge", "--queue", QUEUE + ".dlq", "--yes")
    assert code == 0
    assert "removed 3 message(s) from notify.requests.dlq" in out
    assert dead_letters(capsys) == []
    audit = [r for r in caplog.records if r.name == "services.dlq"]
    assert len(audit) == 1 and audit[0].levelno == logging.WARNING
    assert "3 message(s)" in audit[0].getMessage() and audit[0].queue == "notify.requests.dlq"
    assert PHONE not in caplog.text and "personalisation" not in caplog.text


@pytest.mark.integration
def test_purge_without_queue_is_an_argparse_error_and_touches_nothing(parked, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["dlq", "purge", "--yes"])
    assert exited.value.code == 2
    assert "--queue" in capsys.readouterr().err
    assert dead_letters(capsys) == parked


@pytest.mark.integration
def test_an_unknown_queue_is_exit_2_naming_it_and_the_valid_ones(parked, capsys):
    code, out, err = hysbys(capsys, "purge", "--queue", "notify.request", "--yes")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "'notify.request'" in err and "notify.requests, notify.callbacks" in err
    assert dead_letters(capsys) == parked
    for command in ("list", "replay"):        # the same line, not the broker's 404
        code, out, err = hysbys(capsys, command, "--queue", "notify.request")
        assert code == 2 and "unknown queue 'notify.request'" in err
    assert dead_letters(capsys) == parked


@pytest.mark.integration
def test_an_unknown_id_is_named_and_exit_1_after_removing_the_ids_found(parked, capsys):
    missing = str(uuid.uuid4())
    code, out, err = hysbys(capsys, "purge", "--queue", QUEUE,
                            "--message-id", parked[0], missing, "--yes")
    assert code == 1
    assert "removed 1 message(s)" in out
    said = [line for line in err.splitlines() if line.startswith("hysbys:")]
    assert said == [f"hysbys: not found in notify.requests.dlq: {missing}"]
    assert dead_letters(capsys) == parked[1:]


def test_on_the_embedded_broker_it_answers_as_list_and_replay_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HYSBYS_BROKER_URL", "memory://")
    monkeypatch.setenv("HYSBYS_VAR_DIR", str(tmp_path))
    answers = [hysbys(capsys, *argv) for argv in (["list"], ["replay"],
                                                  ["purge", "--queue", QUEUE, "--yes"])]
    assert answers[2] == answers[0] == answers[1]
    assert answers[2][0] == 2 and "/ops" in answers[2][2]


@pytest.mark.integration
@pytest.mark.parametrize("flag", ["--message-id", "--id"])
def test_replay_takes_one_message_id_spelt_as_purge_spells_it(parked, capsys, flag):
    code, out, _ = hysbys(capsys, "replay", "--queue", QUEUE, flag, parked[1])
    assert code == 0 and "replayed 1 message(s)" in out
    assert dead_letters(capsys) == [parked[0], parked[2]]
