"""The sweeper writes a due line once, then again only after a doubling back-off."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from stockflow.contract.topics import Topics
from stockflow.engine.sweeper import Sweeper


class _Rows:
    """A connection answering the sweeper's query with fixed rows."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def execute(self, *_: object) -> _Rows:
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


def test_a_line_that_stays_due_is_written_again_ever_more_rarely() -> None:
    now = [0.0]
    sweeper = Sweeper(Topics(), first_retry=60, last_retry=3600, clock=lambda: now[0])
    conn = _Rows()
    conn.rows = [("S@W", "O1", "1", datetime(2026, 1, 1, tzinfo=UTC))]
    at = datetime(2026, 1, 2, tzinfo=UTC)
    written = []
    for second in range(0, 20_000, 5):
        now[0] = second
        if sweeper.due(conn, [0], at):  # type: ignore[arg-type]
            written.append(second)
    assert written[:4] == [0, 60, 180, 420]
    assert all(b - a <= 3600 for a, b in itertools.pairwise(written))
    conn.rows = []  # applied: forgotten
    assert sweeper.due(conn, [0], at) == []  # type: ignore[arg-type]
    assert sweeper.written == {}
