"""The engine's own rows: consumer positions and the outbox, written in the same transaction
as a decider's rows (`Rows`), and the Postgres side of a hosted decider (`PgBatchStore`).

A batch is committed by `commit_batch`: the decider's bulk rows by COPY, then one pipeline
with its statements, the outbox rows, the deletion of outbox rows already delivered and the
positions as a compare-and-set; a member whose positions moved under it is fenced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import psycopg

from stockflow import StockflowError
from stockflow.contract.topics import TP

__all__ = ["Advance", "Conn", "FencedError", "Offsets", "OutboxRow", "PgBatchStore", "Rows",
           "commit_batch", "delete_outbox_rows", "load_positions", "pending_outbox"]

Conn = psycopg.Connection[tuple[Any, ...]]


class Advance(NamedTuple):
    """A partition's committed position moving from `expected` (-1: none yet) to `to`."""

    expected: int
    to: int


Offsets = dict[TP, Advance]


class FencedError(StockflowError):
    """Another member committed these partitions first: this batch must be dropped."""


class OutboxRow(NamedTuple):
    """One partition's outgoing messages of a batch, framed as one blob."""

    partition: int
    messages: int
    payload: bytes


class Rows(Protocol):
    """A decider's rows of one batch. `copy` runs first, for COPY (which cannot be
    pipelined); `queue` sends statements inside the batch's pipeline, unsynced."""

    def copy(self, cur: psycopg.Cursor[tuple[Any, ...]]) -> None:
        """COPY this batch's bulk rows in through `cur`, before the pipeline."""
        ...

    def queue(self, conn: Conn) -> None:
        """Queue this batch's statements in the pipeline on `conn`, unsynced."""
        ...


def commit_batch(conn: Conn, group: str, rows: Rows, *, outbox: list[OutboxRow],
                 offsets: Offsets, delete_outbox: list[int]) -> list[int]:
    """Write one batch inside the caller's transaction; returns the new outbox row ids.
    A position that moved under us (not at its `expected`) raises `FencedError`."""
    rows.copy(conn.cursor())
    with conn.pipeline():
        rows.queue(conn)
        if delete_outbox:
            delete_outbox_rows(conn, delete_outbox)
        outbox_cur = None
        if outbox:
            parts, counts, blobs = zip(*outbox, strict=True)
            outbox_cur = conn.execute(
                "INSERT INTO outbox (group_id, partition, messages, payload) "
                "SELECT %s, * FROM unnest(%b::int[], %b::int[], %b::bytea[]) RETURNING id",
                (group, list(parts), list(counts), list(blobs)))
        offsets_cur = _advance(conn, group, offsets) if offsets else None
    if offsets_cur is not None and offsets_cur.rowcount != len(offsets):
        raise FencedError(f"consumer positions moved under this member ({offsets_cur.rowcount} "
                          f"of {len(offsets)} advanced)")
    return [r[0] for r in outbox_cur.fetchall()] if outbox_cur else []


def _advance(conn: Conn, group: str, offsets: Offsets) -> psycopg.Cursor[tuple[Any, ...]]:
    topics, parts, expected, new = [], [], [], []
    for (topic, part), advance in offsets.items():
        topics.append(topic)
        parts.append(part)
        expected.append(advance.expected)
        new.append(advance.to)
    return conn.execute(
        "WITH w AS (SELECT * FROM unnest(%b::text[], %b::int[], %b::bigint[], %b::bigint[])"
        " AS t(topic, partition, expected, next))"
        " INSERT INTO consumer_offsets AS c (group_id, topic, partition, next_offset)"
        " SELECT %s, topic, partition, next FROM w"
        " ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset"
        " WHERE c.next_offset = (SELECT expected FROM w"
        "   WHERE w.topic = EXCLUDED.topic AND w.partition = EXCLUDED.partition)",
        (topics, parts, expected, new, group))


def load_positions(conn: Conn, group: str, partitions: list[TP]) -> dict[TP, int]:
    """The committed next offset of each (topic, partition) that has one."""
    if not partitions:
        return {}
    topics = [t for t, _ in partitions]
    parts = [p for _, p in partitions]
    rows = conn.execute(
        "SELECT c.topic, c.partition, c.next_offset FROM consumer_offsets c"
        " JOIN unnest(%b::text[], %b::int[]) AS w(topic, partition) USING (topic, partition)"
        " WHERE c.group_id = %s", (topics, parts, group)).fetchall()
    return {(t, p): n for t, p, n in rows}


def pending_outbox(conn: Conn, group: str,
                   partitions: list[int]) -> list[tuple[int, bytes]]:
    """Outbox rows of these partitions not yet confirmed as delivered, oldest first."""
    rows = conn.execute(
        "SELECT id, payload FROM outbox WHERE group_id = %s AND partition = ANY(%b) ORDER BY id",
        (group, partitions)).fetchall()
    return [(i, bytes(p)) for i, p in rows]


def delete_outbox_rows(conn: Conn, ids: list[int]) -> None:
    """Forget outbox rows whose messages were delivered."""
    conn.execute("DELETE FROM outbox WHERE id = ANY(%b)", (ids,))


class PgBatchStore:
    """A hosted decider's two connections: `reads` (autocommit: deciding, positions,
    housekeeping) and the writer's, one transaction per batch. `connect(autocommit)` opens
    one; `reconnect` replaces those an outage broke."""

    def __init__(self, connect: Callable[[bool], Conn], group: str) -> None:
        self.connect, self.group = connect, group
        self.reads = connect(True)
        self.writes = connect(False)

    def positions(self, partitions: list[TP]) -> dict[TP, int]:
        return load_positions(self.reads, self.group, partitions)

    def pending_outbox(self, partitions: list[int]) -> list[tuple[int, bytes]]:
        return pending_outbox(self.reads, self.group, partitions)

    def commit(self, rows: Rows, *, outbox: list[OutboxRow], offsets: Offsets,
               delete_outbox: list[int]) -> list[int]:
        """One batch in one transaction on the writer's connection."""
        with self.writes.transaction():
            return commit_batch(self.writes, self.group, rows, outbox=outbox, offsets=offsets,
                                delete_outbox=delete_outbox)

    def backlog(self) -> tuple[int, float]:
        """Undelivered outbox rows of the group, and the age of the oldest in seconds."""
        row = self.reads.execute(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)"
            " FROM outbox WHERE group_id = %s", (self.group,)).fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    def delete_outbox(self, ids: list[int]) -> None:
        with self.writes.transaction():
            delete_outbox_rows(self.writes, ids)

    def rollback(self) -> None:
        """Forget a failed batch's transaction (isolation tries the next part)."""
        self.writes.rollback()

    def reconnect(self) -> None:
        if self.reads.closed or self.reads.broken:
            self.reads.close()
            self.reads = self.connect(True)
        if self.writes.closed or self.writes.broken:
            self.writes.close()
            self.writes = self.connect(False)
        else:
            self.writes.rollback()

    def close(self) -> None:
        self.reads.close()
        self.writes.close()
