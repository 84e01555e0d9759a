"""The processor's observer (`stockflow.adapters.observer`) for Prometheus. Labels are
bounded: topic, event type, outcome, reason, kind, severity and partition number; never a
SKU or key."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from math import ceil

from prometheus_client import CollectorRegistry, Gauge, Histogram, Info
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from stockflow import __version__
from stockflow.adapters.observer import BatchReport
from stockflow.contract.topics import TP

__all__ = ["RECENT_LATENCY", "RECENT_SPAN", "BatchHistogram", "PrometheusObserver",
           "RecentQuantiles"]


# The live view's latency: exact quantiles of the events committed over the last minute
# (at most this many of them: memory stays bounded at any rate)
RECENT_LATENCY, RECENT_SPAN, RECENT_CAP = ("stockflow_end_to_end_latency_recent_seconds", 60.0,
                                           50_000)

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class BatchHistogram(Collector):
    """A histogram fed a whole batch of values at once (one per event): the client's
    Histogram.observe per value cost more than a microsecond per event."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = list(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last is +Inf
        self.sum = 0.0
        self.lock = threading.Lock()

    def observe_all(self, values: Sequence[float]) -> None:
        """Count a batch's values in their buckets, under one lock."""
        if not values:
            return
        bounds = self.bounds
        with self.lock:
            for v in values:
                self.counts[bisect_left(bounds, v)] += 1
            self.sum += sum(values)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self.lock:
            counts, total = list(self.counts), self.sum
        cumulative, running = [], 0
        for bound, n in zip([*map(str, self.bounds), "+Inf"], counts, strict=True):
            running += n
            cumulative.append((bound, running))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative, sum_value=total)
        yield family


class RecentQuantiles(Collector):
    """Exact quantiles of the values of the last `span` seconds, a gauge per quantile: a
    histogram's buckets only say which bound a quantile lies under, and since the start.
    Memory is bounded: past `cap` values, the oldest batches are dropped first."""

    def __init__(self, name: str, documentation: str, *, span: float = RECENT_SPAN,
                 cap: int = RECENT_CAP, quantiles: Sequence[float] = (0.5, 0.95, 0.99),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.documentation = name, documentation
        self.span, self.cap, self.wanted, self.clock = span, cap, tuple(quantiles), clock
        self.batches: deque[tuple[float, Sequence[float]]] = deque()
        self.held = 0
        self.lock = threading.Lock()

    def observe_all(self, values: Sequence[float]) -> None:
        """Keep a batch's values, and drop those older than the span."""
        if not values:
            return
        now = self.clock()
        with self.lock:
            self.batches.append((now, values))
            self.held += len(values)
            self._forget(now)

    def _forget(self, now: float) -> None:
        batches = self.batches
        while batches and (batches[0][0] < now - self.span
                           or self.held - len(batches[0][1]) >= self.cap):
            self.held -= len(batches.popleft()[1])

    def quantiles(self) -> dict[float, float]:
        """Each quantile by nearest rank (a value that occurred); empty with no values."""
        with self.lock:
            self._forget(self.clock())
            values = sorted(chain.from_iterable(v for _, v in self.batches))
        if not values:
            return {}
        return {q: values[max(0, ceil(q * len(values)) - 1)] for q in self.wanted}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=["quantile"])
        for q, value in self.quantiles().items():
            family.add_metric([f"{q:g}"], value)
        yield family


class PrometheusObserver:
    """The processor's observer that keeps its reports as Prometheus metrics in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = PromCounter("stockflow_events_total", "Input events by topic, type and "
                                  "outcome (applied, noop, duplicate, rejected)",
                                  ["topic", "type", "outcome"], registry=registry)
        self.dlq = PromCounter("stockflow_dlq_total", "Inputs sent to the DLQ, by reason",
                               ["reason"], registry=registry)
        self.oversell = PromCounter("stockflow_oversell_total", "oversell.detected by kind",
                                    ["kind"], registry=registry)
        self.batch_size = Histogram("stockflow_batch_messages", "Messages per consumed batch",
                                    buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
                                    registry=registry)
        self.batch_seconds = Histogram("stockflow_batch_duration_seconds",
                                       "Time to process one batch, consume to outputs flushed",
                                       buckets=_SECONDS, registry=registry)
        self.db_seconds = Histogram("stockflow_db_transaction_duration_seconds",
                                    "Time of the batch's Postgres transaction",
                                    buckets=_SECONDS, registry=registry)
        self.stages = Histogram(
            "stockflow_batch_stage_seconds", "Where a batch's time goes: queue (publish to "
            "consumed), decide, handoff (waiting for the writer), commit, emit",
            ["stage"], buckets=_SECONDS, registry=registry)
        self.gc_pauses = Histogram("stockflow_gc_pause_seconds",
                                   "Pauses of the cyclic garbage collector", ["generation"],
                                   buckets=_SECONDS, registry=registry)
        self.latency = BatchHistogram(
            "stockflow_end_to_end_latency_seconds",
            "From an event's CloudEvents time to its batch being committed", _SECONDS)
        registry.register(self.latency)
        self.recent_latency = RecentQuantiles(
            RECENT_LATENCY, f"End-to-end latency quantiles, exact, over the events "
            f"committed in the last {RECENT_SPAN:g} s (the last {RECENT_CAP:,} at most)")
        registry.register(self.recent_latency)
        self.emitted = PromCounter("stockflow_outputs_emitted_total",
                                   "Output and DLQ messages delivered to Kafka", registry=registry)
        self.lag = Gauge("stockflow_consumer_lag_messages", "High watermark minus position",
                         ["topic", "partition"], registry=registry)
        self.alerts = Gauge("stockflow_low_stock_alerts_open", "Open low-stock alerts",
                            ["severity"], registry=registry)
        self.swept = PromCounter("stockflow_reservations_expired_total",
                                 "reservation.expired events written by the sweeper",
                                 registry=registry)
        self.rebalances = PromCounter("stockflow_rebalances_total", "Partition rebalances",
                                      ["kind"], registry=registry)
        self.assigned = Gauge("stockflow_assigned_partitions", "Input partitions owned",
                              registry=registry)
        self.fenced = PromCounter("stockflow_fenced_batches_total",
                                  "Batches dropped because another member committed first",
                                  registry=registry)
        self.failures = PromCounter(
            "stockflow_batch_failures_total", "Failed batches or calls by kind: outage (waited"
            " out), poison (bisected, offenders to the DLQ), fenced", ["kind"], registry=registry)
        self.backlog = Gauge("stockflow_outbox_pending_batches",
                             "Committed output batches not yet confirmed delivered",
                             registry=registry)
        self.backlog_age = Gauge("stockflow_outbox_oldest_seconds",
                                 "Age of the oldest undelivered output batch (emission lag)",
                                 registry=registry)
        self.cache_entries = Gauge("stockflow_cache_entries", "Entries the state cache holds "
                                   "(keys, order lines, references, event ids)",
                                   registry=registry)
        self.ready = Gauge("stockflow_ready", "1 when /readyz answers ready", registry=registry)
        Info("stockflow_build", "Version of the running processor",
             registry=registry).info({"version": __version__})

    def on_batch(self, report: BatchReport) -> None:
        self.batch_size.observe(report.messages)
        self.batch_seconds.observe(report.seconds)
        stages = report.stages
        if "commit" in stages:
            self.db_seconds.observe(stages["commit"])
        for stage, seconds in stages.items():
            self.stages.labels(stage).observe(seconds)
        for (topic, type_, outcome), n in report.events.items():
            self.events.labels(topic, type_, outcome).inc(n)
        for reason, n in report.rejects.items():
            self.dlq.labels(reason).inc(n)
        for kind, n in report.oversells.items():
            self.oversell.labels(kind).inc(n)
        self.latency.observe_all(report.latencies)
        self.recent_latency.observe_all(report.latencies)
        self.emitted.inc(report.emitted)

    def on_rebalance(self, kind: str, assigned: int) -> None:
        self.rebalances.labels(kind).inc()
        self.assigned.set(assigned)

    def on_lag(self, lags: dict[TP, int]) -> None:
        for (topic, part), lag in lags.items():
            self.lag.labels(topic, str(part)).set(lag)

    def on_alerts(self, open_by_severity: dict[str, int]) -> None:
        for severity in ("low", "out_of_stock"):
            self.alerts.labels(severity).set(open_by_severity.get(severity, 0))

    def on_swept(self, expired: int) -> None:
        self.swept.inc(expired)

    def on_fenced(self) -> None:
        self.fenced.inc()

    def on_failure(self, kind: str) -> None:
        self.failures.labels(kind).inc()

    def on_backlog(self, pending_batches: int, oldest_seconds: float) -> None:
        self.backlog.set(pending_batches)
        self.backlog_age.set(oldest_seconds)

    def on_health(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    def on_cache(self, entries: int) -> None:
        self.cache_entries.set(entries)

    def on_gc(self, generation: int, seconds: float) -> None:
        self.gc_pauses.labels(str(generation)).observe(seconds)
