"""The processor's observer (`stockflow.adapters.observer`) for Prometheus. Labels are
bounded: topic, event type, outcome, reason, kind, severity and partition number; never a
SKU or key."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Gauge, Histogram, Info
from prometheus_client import Counter as PromCounter
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from stockflow import __version__
from stockflow.adapters.observer import BatchReport
from stockflow.contract.topics import TP

__all__ = ["BatchHistogram", "PrometheusObserver"]


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


class PrometheusObserver:
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
