"""docs/configuration.md lists every HYSBYS_* variable the code reads, with compose's values.

shared/config.py is the only place shared/ and services/ read the environment, so the
names it reads are the platform's settings; bench/ and tests/ read their own, documented
in their own section.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
NAME = re.compile(r"\bHYSBYS_[A-Z0-9_]*[A-Z0-9]\b")
READS = re.compile(r"os\.environ\.get|os\.getenv|environ\[[^\]]+\](?!\s*=[^=])|getenv\(")


def python_files(*folders: str):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def names_in(paths) -> set[str]:
    return {name for path in paths for name in NAME.findall(path.read_text())}


def documented() -> set[str]:
    return set(NAME.findall(DOC.read_text()))


def doc_rows() -> dict[str, list[str]]:
    """variable -> the cells of its table row (first table row naming it)."""
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `HYSBYS_") and len(cells) >= 4:
            for name in NAME.findall(cells[0]):
                rows.setdefault(name, cells)
    return rows


def test_only_shared_config_reads_the_environment():
    readers = [str(p.relative_to(ROOT)) for p in python_files("shared", "services")
               if READS.search(p.read_text()) and p != ROOT / "shared" / "config.py"]
    assert readers == []


def test_the_read_check_would_see_a_reader_but_not_a_writer():
    assert READS.search('x = os.environ.get("HYSBYS_X")')
    assert READS.search('x = os.environ["HYSBYS_X"]')
    assert not READS.search('os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)')


def test_every_variable_the_platform_reads_is_documented():
    read = names_in([ROOT / "shared" / "config.py"])
    assert read, "the check must find the names config.py reads"
    assert read - documented() == set()


def test_every_variable_anything_in_the_repo_reads_is_documented():
    read = names_in(p for p in python_files("shared", "services", "bench", "tests")
                    if p != Path(__file__).resolve())
    assert read - documented() == set()


def test_every_platform_variable_has_its_meaning_and_both_defaults():
    rows = doc_rows()
    for name in names_in([ROOT / "shared" / "config.py"]):
        meaning, embedded, compose = rows[name][1:4]
        assert meaning and embedded and compose, name


def test_the_compose_column_is_what_docker_compose_sets():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    rows = doc_rows()
    for svc_name, svc in services.items():
        if (svc.get("command") or [None])[0] != "hysbys":
            continue
        for name, value in svc["environment"].items():
            if name.startswith("HYSBYS_"):
                assert name in rows, f"{svc_name} sets {name}, undocumented"
                assert f"`{value}`" in rows[name][3], (svc_name, name, value)
