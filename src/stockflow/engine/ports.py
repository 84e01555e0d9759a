"""What the engine's host needs from the decider it hosts and from the store that keeps
that decider's state and positions; the stock processor and the order coordinator are two
deciders on the same host, Postgres (`adapters.db.batches.PgBatchStore`) their store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from stockflow.adapters.db.batches import Offsets, OutboxRow, Rows
from stockflow.adapters.observer import Observer
from stockflow.contract.emit import Message
from stockflow.contract.topics import TP
from stockflow.engine.batch import Consumed, Prepared

__all__ = ["BatchStore", "Decider"]


class BatchStore(Protocol):
    """Positions, the outbox and one transaction per batch. `reads` is the connection a
    decider reads through (autocommit); commits go through another (the writer's)."""

    reads: Any

    def positions(self, partitions: list[TP]) -> dict[TP, int]:
        """The committed next offset of each partition."""
        ...

    def pending_outbox(self, partitions: list[int]) -> list[tuple[int, bytes]]:
        """Outbox rows not emitted yet on `partitions`: their ids and blobs."""
        ...

    def commit(self, rows: Rows, *, outbox: list[OutboxRow], offsets: Offsets,
               delete_outbox: list[int]) -> list[int]:
        """The batch in one transaction; the new outbox row ids. Raises FencedError when a
        position moved under this member."""
        ...

    def delete_outbox(self, ids: list[int]) -> None:
        """Delete emitted outbox rows."""
        ...

    def backlog(self) -> tuple[int, float]:
        """Undelivered outbox rows, and the age of the oldest in seconds."""
        ...

    def rollback(self) -> None:
        """Roll back the transaction in progress."""
        ...

    def reconnect(self) -> None:
        """Drop the connections and open new ones (after an outage)."""
        ...

    def close(self) -> None:
        """Close the connections."""
        ...


class Decider(Protocol):
    """A pure decider behind its cache: it turns consumed messages into rows and messages,
    and is told to forget what it cached when the member's beliefs turn out void."""

    @property
    def inputs(self) -> list[str]:
        """The co-partitioned topics it consumes."""
        ...

    def decide(self, reads: Any, batch: list[Consumed], *, positions: Mapping[TP, int],
               ends: Mapping[TP, int], dead: Mapping[tuple[str, int, int], str] | None = None,
               ) -> Prepared:
        """Step 1 (raises DecideError): `dead` messages are dead-lettered, not applied."""
        ...

    def forget(self) -> None:
        """Drop what is cached, so that the next batch reads its keys from the store again."""
        ...

    def full(self) -> bool:
        """Its cache wants clearing (between batches)."""
        ...

    def due(self, reads: Any, partitions: list[int]) -> list[Message]:
        """Messages its own clock makes due (e.g. expiries), produced by housekeeping."""
        ...

    def report(self, reads: Any, observer: Observer) -> None:
        """Its gauges, at housekeeping."""
        ...
