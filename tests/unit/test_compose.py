"""docker-compose.yml is valid and sets only settings stockflow reads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from stockflow.adapters.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid() -> None:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is required (Debian's docker-compose; scripts/bootstrap)"
    done = subprocess.run([tool, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_compose_sets_only_known_stockflow_variables() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = {f"STOCKFLOW_{name.upper()}" for name in Settings.model_fields}
    used = {var for svc in doc["services"].values()
            for var in (svc.get("environment") or {}) if var.startswith("STOCKFLOW_")}
    assert used, "the compose file configures no stockflow service"
    assert used <= known, f"unknown settings: {sorted(used - known)}"


def test_compose_has_every_part() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"kafka", "postgres", "init", "processor", "coordinator", "relay", "api",
            "simulator", "prometheus", "grafana"} <= set(services)
    assert services["coordinator"]["command"] == ["coordinate"]
    assert services["api"]["command"] == ["api"]
    assert services["relay"]["command"] == ["relay"]
    assert services["simulator"]["profiles"] == ["simulate"]
    assert services["kafka"]["image"].startswith("apache/kafka:")


def test_compose_mounts_exist() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for svc in doc["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
