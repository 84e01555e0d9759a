"""The integration tests' session: where their child processes write their logs."""

from __future__ import annotations

import pytest

from tests.integration import harness


@pytest.fixture(scope="session", autouse=True)
def _child_logs(tmp_path_factory: pytest.TempPathFactory) -> None:
    harness.LOG_DIR = tmp_path_factory.mktemp("child-logs")
