"""The CLI's surface: --version, help on every option, and the documented exit codes."""
from __future__ import annotations

import argparse
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from services import cli

ROOT = Path(__file__).resolve().parents[2]


def walk(parser: argparse.ArgumentParser, path: str = "hysbys"):
    """Every (command path, action) of the parser tree, sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_and_argument_of_every_subcommand_has_help():
    missing = [f"{path} {'/'.join(a.option_strings) or a.dest}"
               for path, a in walk(cli.build_parser()) if not a.help]
    assert missing == []


def test_every_subcommand_has_a_help_line():
    def subcommands(parser, path="hysbys"):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {c.dest for c in action._choices_actions if c.help}
                for name, sub in action.choices.items():
                    yield f"{path} {name}", name in helped
                    yield from subcommands(sub, f"{path} {name}")
    unhelped = [path for path, ok in subcommands(cli.build_parser()) if not ok]
    assert unhelped == []


def test_the_help_walk_notices_an_option_without_help():
    parser = argparse.ArgumentParser()
    parser.add_subparsers().add_parser("x").add_argument("--quiet", action="store_true")
    assert [a.dest for _, a in walk(parser) if not a.help] == ["quiet"]


def test_version_prints_the_installed_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"hysbys {version('hysbys')}"


def documented_exit_codes() -> dict[int, str]:
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split("## Exit status", 1)[1]
    return {int(code): meaning for code, meaning in
            re.findall(r"^\| (\d+) \| (\w+)", section, re.MULTILINE)}


def test_the_exit_code_table_is_the_code_s():
    assert documented_exit_codes() == cli.EXIT_CODES


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["dlq", "purge"])                  # --queue is required
    assert done.value.code == cli.EXIT_USAGE == 2
    assert "--queue" in capsys.readouterr().err


def test_a_malformed_setting_exits_1_naming_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HYSBYS_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HYSBYS_NOTIFY_PORT", "eighty")
    with pytest.raises(SystemExit) as done:
        cli.main(["tenants", "list"])
    assert done.value.code == cli.EXIT_FAILED == 1
    assert "HYSBYS_NOTIFY_PORT" in capsys.readouterr().err


@pytest.fixture
def embedded_env(monkeypatch, tmp_path):
    for name in ("HYSBYS_DATABASE_URL", "HYSBYS_BROKER_URL", "HYSBYS_NOTIFY_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HYSBYS_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HYSBYS_LOG_FORMAT", "text")


def test_input_the_platform_refuses_exits_2(embedded_env, capsys):
    args = ["tenants", "create", "--name", "Cyngor Gwynedd", "--slug", "gwynedd", "--json"]
    assert cli.main(args) == cli.EXIT_OK
    assert cli.main(args) == cli.EXIT_USAGE         # the slug is taken
    assert "gwynedd" in capsys.readouterr().err


def test_a_command_not_possible_here_exits_2(embedded_env, capsys):
    assert cli.main(["dlq", "list"]) == cli.EXIT_USAGE   # the embedded broker is in memory
    assert "embedded platform" in capsys.readouterr().err
