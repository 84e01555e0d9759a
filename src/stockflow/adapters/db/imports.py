"""CSV imports in Postgres (see migration 0008): what each published, and how far the
processor has got with it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from stockflow.adapters.db.store import AsyncConn, Conn

__all__ = ["Listed", "Progress", "Recorded", "progress", "progress_async", "published",
           "recent_async", "record"]

MAX_LISTED = 100  # rejected rows listed by a progress report


class Recorded(NamedTuple):
    """An import as it is recorded before it is published: who sent which file, and its lines."""

    import_id: str
    kind: str
    actor: str
    file_name: str
    digest: str
    lines: list[int]
    skipped: int


def record(conn: Conn, imp: Recorded) -> None:
    """Remember an import before it is published (its id again is a retry, kept as it
    was: `stockflow.adapters.db.idempotency` has refused the id for another file)."""
    conn.execute(
        "INSERT INTO imports (id, kind, actor, file_name, digest, lines, skipped)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING", imp)


def published(conn: Conn, import_id: str) -> None:
    """Mark the import published (the first time only: a retry keeps the first time)."""
    conn.execute("UPDATE imports SET published_at = coalesce(published_at, now())"
                 " WHERE id = %s", (import_id,))


class Progress(NamedTuple):
    """How far an import has come: its rows, and what the processor made of them so far."""

    import_id: str
    kind: str
    actor: str
    file_name: str
    rows: int
    skipped: int
    created_at: datetime
    published_at: datetime | None
    applied: int
    noop: int  # applied with nothing to change (a reference seen before)
    rejected: int  # refused on the key's state (sent to the DLQ)
    rejections: list[tuple[int, str]]  # (line, reason), the first MAX_LISTED

    @property
    def pending(self) -> int:
        """Rows the processor has not decided yet."""
        return self.rows - self.applied - self.noop - self.rejected


_HEAD = ("SELECT id, kind, actor, file_name, cardinality(lines), skipped, created_at,"
         " published_at FROM imports WHERE id = %s")
# One primary-key probe per event id (OFFSET 0 keeps each LATERAL a probe, not a join
# that would read all of processed_events): the cost grows with the import, not the table.
_OUTCOMES = (
    "WITH e AS (SELECT i.id || ':' || line AS id, line FROM imports i, unnest(i.lines) AS line"
    " WHERE i.id = %s),"
    " p AS (SELECT e.*, (SELECT outcome FROM processed_events WHERE event_id = e.id OFFSET 0)"
    " AS outcome FROM e),"
    " r AS (SELECT p.*, (SELECT reason || ': ' || message FROM rejected_events"
    " WHERE event_id = p.id AND p.outcome IS NULL OFFSET 0) AS rejection FROM p)"
    " SELECT count(*) FILTER (WHERE outcome = 'applied'), count(*) FILTER (WHERE outcome ="
    " 'noop'), count(rejection), (array_agg(ARRAY[line::text, rejection] ORDER BY line)"
    " FILTER (WHERE rejection IS NOT NULL))[1:%s] FROM r")


def _progress(head: tuple[Any, ...] | None, outcomes: tuple[Any, ...] | None) -> Progress | None:
    if head is None or outcomes is None:
        return None
    ident, kind, actor, file_name, rows, skipped, created_at, published_at = head
    applied, noop, rejected, listed = outcomes
    return Progress(ident, kind, actor, file_name, rows, skipped, created_at, published_at,
                    applied, noop, rejected,
                    [(int(line), reason) for line, reason in listed or []])


def progress(conn: Conn, import_id: str) -> Progress | None:
    """The import's rows the processor has applied, found duplicate or rejected so far."""
    head = conn.execute(_HEAD, (import_id,)).fetchone()
    outcomes = conn.execute(_OUTCOMES, (import_id, MAX_LISTED)).fetchone()
    return _progress(head, outcomes)


async def progress_async(conn: AsyncConn, import_id: str) -> Progress | None:
    """`progress` on the HTTP API's asynchronous connection."""
    head = await (await conn.execute(_HEAD, (import_id,))).fetchone()
    outcomes = await (await conn.execute(_OUTCOMES, (import_id, MAX_LISTED))).fetchone()
    return _progress(head, outcomes)


class Listed(NamedTuple):
    """An import as a list shows it."""

    import_id: str
    kind: str
    actor: str
    file_name: str
    rows: int
    created_at: datetime
    published_at: datetime | None


async def recent_async(conn: AsyncConn, limit: int) -> list[Listed]:
    """The newest `limit` imports, newest first (one row per file sent: a small table)."""
    cur = await conn.execute(
        "SELECT id, kind, actor, file_name, cardinality(lines), created_at, published_at"
        " FROM imports ORDER BY created_at DESC, id LIMIT %s", (limit,))
    return [Listed(*row) for row in await cur.fetchall()]
