"""One Kafka broker and one Postgres server per test session, started only when a test needs them.

They never skip: a test that needs a service and cannot get one fails, in CI and locally.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from stockflow.devtools.localenv import LocalServices, local_services


@pytest.fixture(scope="session")
def services() -> Iterator[LocalServices]:
    with contextlib.ExitStack() as stack:
        try:
            found = stack.enter_context(local_services())
        except Exception as exc:  # noqa: BLE001 - any start-up failure fails the test
            pytest.fail(f"Kafka and Postgres are required and could not be started: {exc}")
        yield found


@pytest.fixture
def unique() -> str:
    """A short unique token for topic prefixes, schemas and group ids of one test."""
    return uuid.uuid4().hex[:10]
