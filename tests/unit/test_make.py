"""`make help` is the list a newcomer reads: every target explains itself there, and every
script and benchmark command has a target."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.unit.test_bench import COMMANDS

ROOT = Path(__file__).parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()
TARGETS = re.findall(r"^([a-z0-9-]+):", MAKEFILE, flags=re.MULTILINE)


def test_every_target_is_phony_and_says_what_it_does() -> None:
    declared = re.search(r"^\.PHONY:(.*?)\n\n", MAKEFILE, flags=re.MULTILINE | re.DOTALL)
    assert declared is not None
    assert set(declared.group(1).replace("\\\n", " ").split()) == set(TARGETS)
    for target in TARGETS:
        assert re.search(rf"^{target}:.*## \S", MAKEFILE, flags=re.MULTILINE), target


def test_every_script_and_benchmark_has_a_target() -> None:
    recipes = "\n".join(line for line in MAKEFILE.splitlines() if line.startswith("\t"))
    scripts = [p.name for p in (ROOT / "scripts").iterdir() if os.access(p, os.X_OK)]
    for name in scripts:
        assert f"scripts/{name}" in recipes, name
    for command in COMMANDS:
        assert f"bench/{command}.py" in recipes, command


def test_make_help_lists_every_target() -> None:
    shown = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                           check=True, timeout=30).stdout
    assert [line.split()[0] for line in shown.splitlines()] == TARGETS
