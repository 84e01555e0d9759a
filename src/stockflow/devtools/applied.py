"""Waiting until a running processor has applied what a tool published, for tools whose
events depend on one another across input topics (`simulate --backfill-days`).

Nothing orders two events of a key on different input topics (the contract): they are
produced as separate per-partition batches and fetched as separate per-partition blocks,
so one published a microsecond after the other may be appended, fetched and applied
before it, however slowly the tool publishes. The only order a tool can rely on is
"published after the other was applied", which `AppliedWatch.wait` establishes.

What is applied is read where the processor commits it, in the same Postgres transaction
as the ledger: its group's positions (`consumer_offsets`). The group's Kafka offsets are
only a mirror, refreshed every sweep interval, far too late to wait on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from stockflow import StockflowError
from stockflow.adapters.db import store
from stockflow.adapters.db.batches import load_positions
from stockflow.adapters.kafka import partition_counts
from stockflow.contract.topics import TP

__all__ = ["AppliedWatch", "NotAppliedError"]


class NotAppliedError(StockflowError):
    """No processor applied anything of what was published for the patience given."""


class AppliedWatch:
    """The input partitions' ends, and whether the processor's group has applied up to
    them. Only partitions written since the watch was made are waited for, so an older
    backlog elsewhere (or an end a lone transaction marker holds) never holds a tool up."""

    def __init__(self, client: AdminClient, conn: store.Conn, group: str,
                 inputs: list[str]) -> None:
        self.client, self.conn, self.group = client, conn, group
        counts = partition_counts(client, inputs)
        self.partitions = [(t, p) for t in inputs for p in range(counts[t] or 0)]
        self.start = self._ends()

    def _ends(self) -> dict[TP, int]:
        # read_committed, as the processor consumes: its position stops at the stable end
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]  # untyped in the stubs
        asked = dict.fromkeys((TopicPartition(t, p) for t, p in self.partitions), latest)
        futures = self.client.list_offsets(asked, isolation_level=IsolationLevel.READ_COMMITTED,
                                           request_timeout=15)
        return {(tp.topic, tp.partition): int(f.result().offset) for tp, f in futures.items()}

    def wait(self, stop: threading.Event, *, patience: float = 60.0,
             waiting: Callable[[float, int], None] | None = None) -> float:
        """Until everything published so far (and flushed) is applied; returns the seconds
        waited. Returns early once `stop` is set; NotAppliedError if the group applied
        nothing for `patience` seconds. `waiting(seconds, behind)` hears, a few times a
        second, about a wait that lasts: how many of the events published since the watch
        was made are still to apply."""
        began = progressed = time.monotonic()
        ends = {tp: n for tp, n in self._ends().items() if n > self.start.get(tp, 0)}
        done = load_positions(self.conn, self.group, list(ends))
        pause = 0.002
        while any(done.get(tp, 0) < end for tp, end in ends.items()) and not stop.wait(pause):
            now, before = time.monotonic(), done
            done = load_positions(self.conn, self.group, list(ends))
            if done != before:  # an older backlog being worked off counts as progress too
                progressed = now
            elif now - progressed > patience:
                raise NotAppliedError(
                    f"the processor applied nothing for {patience:.0f} s: is `stockflow "
                    f"process` running, with group id {self.group!r}, on this database and "
                    "these topics?")
            # a batch usually lands within tens of milliseconds: look often, then less
            pause = min(0.1, pause * 1.5)
            if waiting is not None and now - began > 0.5:
                waiting(now - began, sum(max(0, end - max(done.get(tp, 0), self.start[tp]))
                                         for tp, end in ends.items()))
        return time.monotonic() - began
