"""Alerts as code: promtool checks the rules and runs their unit tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

PROM = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is required (Debian's prometheus package; scripts/bootstrap)"
    return found


def _rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"]}


def test_rules_are_valid() -> None:
    done = subprocess.run([_promtool(), "check", "rules", str(PROM / "alerts.yml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_runbook_and_a_firing_test() -> None:
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
    fired = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    for name, rule in _rules().items():
        assert "Runbook:" in rule["annotations"]["description"], name
        assert name in fired, f"{name} has no test in which it fires"


def _render(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m[1], ""), template)


def test_rule_unit_tests_pass(tmp_path: Path) -> None:
    rules = _rules()
    doc = yaml.safe_load((PROM / "alerts_test.yml").read_text())
    doc["rule_files"] = [str(PROM / "alerts.yml")]
    for case in doc["tests"]:
        for check in case["alert_rule_test"]:
            rule = rules[check["alertname"]]
            for alert in check["exp_alerts"]:
                labels = {**alert.get("exp_labels", {})}
                alert["exp_annotations"] = {k: _render(v, labels)
                                            for k, v in rule["annotations"].items()}
    filled = tmp_path / "alerts_test.yml"
    filled.write_text(yaml.safe_dump(doc))
    done = subprocess.run([_promtool(), "test", "rules", str(filled)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
