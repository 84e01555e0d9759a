"""The writer: steps 2 to 4 of the checkpoint on a thread of their own, so the consuming
thread decides batch N+1 while batch N is committed and emitted. A two-stage pipeline
with at most one batch in flight; the host waits for it before anything that must see
its outcome (the next batch's hand-over, a rebalance, a stop)."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from stockflow.adapters.db.batches import Offsets
from stockflow.adapters.observer import Observer
from stockflow.engine.batch import Prepared
from stockflow.engine.checkpoint import Checkpoint

__all__ = ["InFlight", "Writer"]

InFlight = tuple[Future[Offsets], Prepared]


class Writer:
    """Steps 2 to 4 of each batch, on a thread of their own."""

    def __init__(self, checkpoint: Checkpoint, observer: Observer) -> None:
        self.checkpoint, self.observer = checkpoint, observer
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="stockflow-writer")
        self.in_flight: InFlight | None = None

    def write(self, prepared: Prepared) -> Offsets:
        """Steps 2-4 for one batch, here and now (on the writer thread, or inline while
        isolating a poison message); returns the batch's offsets."""
        if prepared.decided:
            prepared.report.stages["handoff"] = time.monotonic() - prepared.decided
        offsets = self.checkpoint.write(prepared)
        prepared.report.seconds = time.monotonic() - prepared.started
        self.observer.on_batch(prepared.report)
        return offsets

    def submit(self, prepared: Prepared) -> None:
        """Hand a batch to the writer thread; the one before must have been taken."""
        assert self.in_flight is None, "one batch in flight at most"
        self.in_flight = (self.pool.submit(self.write, prepared), prepared)

    @property
    def idle(self) -> bool:
        """Nothing in flight, or what is has finished (taking it will not wait)."""
        return self.in_flight is None or self.in_flight[0].done()

    def take(self) -> InFlight | None:
        """The batch in flight, no longer in flight (its future may still be running)."""
        taken, self.in_flight = self.in_flight, None
        return taken

    def shutdown(self) -> None:
        """Wait for the batch in flight, then stop the thread."""
        self.pool.shutdown(wait=True)
