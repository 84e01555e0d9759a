"""What the processor reports, as a small observer protocol; `stockflow.adapters.metrics`
implements it for Prometheus.

The loop reports once per batch (`BatchReport`), never per event, so metrics cost nothing
on the hot path.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from stockflow.contract.topics import TP

__all__ = ["STAGES", "BatchReport", "NullObserver", "Observer"]


STAGES = ("queue", "decide", "handoff", "commit", "emit")


@dataclass
class BatchReport:
    """One batch, as the loop saw it. `stages` says where its time went, in seconds:
    `queue` publish to consumed (the batch's first message: producer linger, broker, fetch,
    waiting behind earlier batches), `decide` parse and rules, `handoff` waiting for the
    writer to finish the batch before, `commit` the Postgres transaction, `emit` producing
    the outputs until the broker acknowledged them."""

    messages: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # topic,type,outcome
    rejects: Counter[str] = field(default_factory=Counter)
    oversells: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    emitted: int = 0


class Observer(Protocol):
    """What the processor reports; every method defaults to doing nothing."""

    def on_batch(self, report: BatchReport) -> None:
        """A batch was committed and its outputs delivered."""
        return

    def on_rebalance(self, kind: str, assigned: int) -> None:
        """Partitions were assigned or revoked; `assigned` is how many are owned now."""
        return

    def on_lag(self, lags: dict[TP, int]) -> None:
        """Periodically: messages behind the high watermark per (topic, partition)."""
        return

    def on_alerts(self, open_by_severity: dict[str, int]) -> None:
        """Periodically: open low-stock alerts in Postgres."""
        return

    def on_swept(self, expired: int) -> None:
        """The sweeper wrote this many reservation.expired events."""
        return

    def on_fenced(self) -> None:
        """A batch was rolled back because another member committed first."""
        return

    def on_failure(self, kind: str) -> None:
        """A batch or a Postgres/Kafka call failed: `outage` (waited out), `poison`
        (isolated to the DLQ) or `fenced` (see `stockflow.engine.failures`)."""
        return

    def on_backlog(self, pending_batches: int, oldest_seconds: float) -> None:
        """Periodically: outbox batches not yet confirmed delivered, and the oldest's age."""
        return

    def on_health(self, ready: bool) -> None:
        """Periodically: whether the member is ready (see /readyz)."""
        return

    def on_cache(self, entries: int) -> None:
        """Periodically: entries the state cache holds (see `cache_max_entries`)."""
        return

    def on_gc(self, generation: int, seconds: float) -> None:
        """The cyclic garbage collector paused the process for `seconds`."""
        return


class NullObserver(Observer):
    """Reports nothing: for tests and tools that run a processor without metrics."""
