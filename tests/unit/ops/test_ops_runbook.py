"""Every alert leads the operator to its section of the runbook."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def anchors() -> set[str]:
    """GitHub's anchors for the runbook's headings."""
    text = (ROOT / "docs" / "operations.md").read_text()
    return {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def rules() -> list[dict]:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    return [rule for group in config["groups"] for rule in group["rules"]]


def test_every_alert_is_named_in_the_runbook():
    runbook = (ROOT / "docs" / "operations.md").read_text()
    missing = [r["alert"] for r in rules() if f"`{r['alert']}`" not in runbook]
    assert not missing


def test_every_runbook_link_in_an_alert_reaches_a_heading():
    known = anchors()
    links = [(r["alert"], link) for r in rules()
             for link in re.findall(r"docs/operations\.md#([a-z0-9-]+)",
                                    r["annotations"].get("description", ""))]
    assert links
    assert [(alert, link) for alert, link in links if link not in known] == []


def test_the_alerts_this_work_adds_exist():
    names = {r["alert"] for r in rules()}
    assert {"HysbysQueueGrowing", "HysbysProviderCircuitOpen", "HysbysRetentionNotRunning",
            "HysbysDeadLetterQueueNotEmpty", "HysbysSchedulerLagging", "HysbysOutboxStuck"} <= names
