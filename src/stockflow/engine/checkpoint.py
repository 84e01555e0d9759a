"""One decided batch, applied exactly once, in four steps; each raises its own error
(`stockflow.engine.failures`), whose cause says why.

1. **Decide** (the hosted decider, on the consuming thread; DecideError): parse every
   message at the edge (rejections become DLQ messages), read what the decider's cache
   lacks, run its pure rules in consume order, collect the rows to write, the outgoing
   messages and the new offsets (`batch.Prepared`).
2. **Commit** (`commit`, on the writer thread; CommitError): one Postgres transaction with
   the decider's rows, the outgoing messages (outbox) and the consumed offsets, the last
   as a compare-and-set: a member whose positions moved under it is fenced (FencedError)
   and the transaction rolled back.
3. **Emit** (`Checkpoint.emit`; EmitError): produce the outgoing messages and flush them.
4. **Mark emitted** (MarkError): delete their outbox rows, inside the next batch's
   transaction or, when no batch comes, on their own (`Checkpoint.mark_emitted`). After a
   crash the next owner of the partition re-emits whatever is left, with the same ids.

`Checkpoint.write` runs steps 2 to 4 for one decided batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from confluent_kafka import Producer

from stockflow.adapters.db.batches import Offsets
from stockflow.adapters.kafka import DeliveryFailures, produce_all
from stockflow.contract.emit import Message
from stockflow.engine.batch import Prepared
from stockflow.engine.failures import CommitError, EmitError, MarkError
from stockflow.engine.ports import BatchStore

__all__ = ["Checkpoint", "commit"]


def commit(store: BatchStore, prepared: Prepared, *, delete_outbox: list[int]) -> list[int]:
    """Step 2: write and commit the batch (and step 4 for `delete_outbox`, the rows of
    earlier batches emitted since); returns the batch's outbox row ids."""
    started = time.monotonic()
    try:
        ids = store.commit(prepared.rows, outbox=prepared.outbox, offsets=prepared.offsets,
                           delete_outbox=delete_outbox)
    except Exception as exc:
        raise CommitError(f"committing a batch of {len(prepared.batch)} failed") from exc
    done = time.time()
    report = prepared.report
    report.stages["commit"] = time.monotonic() - started
    report.latencies = [max(0.0, done - t) for t in prepared.event_times]
    return ids


class Checkpoint:
    """Steps 2 to 4 for one member: what it emitted and has not yet marked, the producer
    that emits, and how long a flush may wait (a stop cuts it short)."""

    def __init__(self, *, store: BatchStore, producer: Producer, failures: DeliveryFailures,
                 flush_timeout: float, stop: threading.Event | None = None) -> None:
        self.store, self.producer, self.failures = store, producer, failures
        self.flush_timeout = flush_timeout
        self.stop = stop or threading.Event()
        self.emitted: list[int] = []  # outbox rows delivered, to delete in step 4

    def write(self, prepared: Prepared) -> Offsets:
        """Steps 2, 3, and 4 for the batches emitted before; returns the batch's offsets."""
        ids = commit(self.store, prepared, delete_outbox=self.emitted)
        self.emitted = []
        started = time.monotonic()
        self.emit(prepared.messages)
        prepared.report.stages["emit"] = time.monotonic() - started
        self.emitted = ids
        return prepared.offsets

    def emit(self, messages: Iterable[Message]) -> None:
        """Step 3: produce and flush; EmitError (an outage) unless all were delivered."""
        try:
            produce_all(self.producer, messages)
        except Exception as exc:
            raise EmitError("producing the outputs failed") from exc
        deadline = time.monotonic() + self.flush_timeout
        while (left := self.producer.flush(1.0)) and time.monotonic() < deadline \
                and not self.stop.is_set():
            pass
        failed = self.failures.take()
        if left or failed:
            raise EmitError(f"{left} outputs undelivered, failures: {failed[:3]}")

    def mark_emitted(self) -> None:
        """Step 4 on its own, when no next batch carries it."""
        if not self.emitted:
            return
        try:
            self.store.delete_outbox(self.emitted)
        except Exception as exc:
            raise MarkError(f"deleting {len(self.emitted)} emitted outbox rows failed") from exc
        self.emitted = []
