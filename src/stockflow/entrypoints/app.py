"""The composition root: settings in, a wired processor out. Tests and the CLI both use it."""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from prometheus_client import CollectorRegistry, ProcessCollector

from stockflow.adapters.broker_watch import BrokerWatch
from stockflow.adapters.db import store
from stockflow.adapters.db.batches import PgBatchStore
from stockflow.adapters.db.migrate import require_migrated
from stockflow.adapters.health import Health, serve
from stockflow.adapters.kafka import (
    DeliveryFailures,
    admin,
    consumer,
    producer,
    require_copartitioned,
)
from stockflow.adapters.kafka_metrics import KafkaMetrics
from stockflow.adapters.metrics import PrometheusObserver
from stockflow.adapters.observer import NullObserver, Observer
from stockflow.adapters.order_metrics import OrderMetrics
from stockflow.adapters.settings import Settings
from stockflow.adapters.signals import stop_on_signals
from stockflow.contract.topics import Topics
from stockflow.engine.checkpoint import Checkpoint
from stockflow.engine.coordinator import CoordinatorDecider, OrderWatch
from stockflow.engine.host import Host
from stockflow.engine.ports import Decider
from stockflow.engine.stock import StockDecider
from stockflow.engine.writer import Writer

__all__ = ["Serving", "build_coordinator", "build_processor", "database", "migrated_database",
           "run_coordinator", "run_processor",
           "serving"]

# seconds a batch's outputs may take to be delivered before it counts as an outage
FLUSH_TIMEOUT = 30.0

log = logging.getLogger("stockflow")


def tune_gc() -> None:
    """The processor allocates many small, acyclic objects per event (freed by reference
    counting) and keeps a large cache: with CPython's default thresholds the cyclic
    collector ran so often that it took about half of the processing time (measured with
    bench/run.py and a micro-benchmark of the rules). Collect rarely, and never scan what
    start-up created."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


@contextmanager
def gc_watched(observer: Observer) -> Iterator[None]:
    """Report every pause of the cyclic collector to `observer` while inside."""
    began = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            observer.on_gc(info["generation"], time.perf_counter() - began[0])

    gc.callbacks.append(timed)
    try:
        yield
    finally:
        gc.callbacks.remove(timed)


def database(settings: Settings, *, autocommit: bool = True) -> store.Conn:
    """A connection to the configured database and schema, with its timeouts and
    keepalives."""
    return store.connect(settings.dsn(), settings.database_schema, autocommit=autocommit,
                         **settings.database_options())


def migrated_database(settings: Settings) -> store.Conn:
    """`database`, refused with a clear message unless the schema is migrated."""
    conn = database(settings)
    try:
        require_migrated(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def build_processor(settings: Settings, *, observer: Observer | None = None,
                    health: Health | None = None) -> Host:
    """Check the topics and the schema, then wire clients, the stock decider and the host."""
    decider = StockDecider(topics=Topics(settings.topic_prefix), policy=settings.policy(),
                           limits=settings.limits(), cache_entries=settings.cache_max_entries)
    return _hosting(settings, decider, settings.group_id, observer, health)


def build_coordinator(settings: Settings, *, observer: Observer | None = None,
                      health: Health | None = None,
                      metrics: OrderWatch | None = None) -> Host:
    """Check the coordinator's topics and the schema, then wire clients, the order
    decider and the host (its own group; see `engine.coordinator`)."""
    decider = CoordinatorDecider(topics=Topics(settings.topic_prefix), limits=settings.limits(),
                                 ttl=settings.policy().reservation_ttl,
                                 cache_entries=settings.coordinator_cache_entries,
                                 watch=metrics)
    # Its consumer gathers for less: an order waits on two of its batches and one of the
    # processor's, and the coordinator's batches are few beside the processor's.
    return _hosting(settings.model_copy(update={
        "batch_gather_ms": settings.coordinator_batch_gather_ms}), decider,
        settings.coordinator_group_id, observer, health)


def _hosting(settings: Settings, decider: Decider, group: str, observer: Observer | None,
             health: Health | None) -> Host:
    """The host of `decider` in consumer group `group`, once its input topics are
    co-partitioned and the schema migrated: its clients, store and writer."""
    health = health or Health()
    observer = observer or NullObserver()
    watch = health.brokers  # every client's errors and outages, and readiness
    require_copartitioned(admin(settings, watch), decider.inputs)

    def connect(autocommit: bool) -> store.Conn:
        return database(settings, autocommit=autocommit)

    migrated_database(settings).close()
    failures = DeliveryFailures()
    kafka_producer = producer(settings, failures.config(), watch)
    batches = PgBatchStore(connect, group)
    checkpoint = Checkpoint(store=batches, producer=kafka_producer, failures=failures,
                            flush_timeout=FLUSH_TIMEOUT)
    return Host(
        consumer=consumer(settings, {"group.id": group}, watch=watch),
        producer=kafka_producer, store=batches, decider=decider,
        writer=Writer(checkpoint, observer), group=group, observer=observer, health=health,
        batch_max=settings.batch_max_messages, idle_wait=settings.idle_wait,
        sweep_interval=settings.sweep_interval, give_up=settings.outage_give_up,
    )


class Serving(NamedTuple):
    """A processor being served: its host, its metrics registry, and where /metrics is."""

    processor: Host
    registry: CollectorRegistry
    metrics_port: int  # where /metrics is: the configured port, or the one 0 picked


Build = Callable[[Settings, Observer, Health, CollectorRegistry], Host]


def _processor(settings: Settings, observer: Observer, health: Health,
               _registry: CollectorRegistry) -> Host:
    return build_processor(settings, observer=observer, health=health)


def _coordinator(settings: Settings, observer: Observer, health: Health,
                 registry: CollectorRegistry) -> Host:
    return build_coordinator(settings, observer=observer, health=health,
                             metrics=OrderMetrics(registry))


@contextmanager
def serving(settings: Settings, build: Build = _processor,
            port_setting: str = "metrics_port") -> Iterator[Serving]:
    """A wired host (the stock processor unless `build` says otherwise) with /metrics,
    /healthz and /readyz served on the port of `port_setting`; all closed after."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # resident memory, CPU seconds, open files
    kafka = KafkaMetrics(registry)
    health = Health(brokers=BrokerWatch(counted=kafka.error, reachable=kafka.reachable))
    server = serve(settings.metrics_host, getattr(settings, port_setting), registry, health,
                   setting=Settings.variable(port_setting))
    port = int(server.server_address[1])
    try:
        observer = PrometheusObserver(registry)
        host = build(settings, observer, health, registry)
        tune_gc()
        log.info("processing; metrics on :%d/metrics", port)
        try:
            with gc_watched(observer):
                yield Serving(host, registry, port)
        finally:
            host.close()
    finally:
        server.shutdown()


def run_processor(settings: Settings) -> None:
    """Run the processor with metrics and health endpoints until stopped."""
    _run(settings, _processor, "metrics_port", "events")


def run_coordinator(settings: Settings) -> None:
    """Run the order coordinator with metrics and health endpoints until stopped."""
    _run(settings, _coordinator, "coordinator_metrics_port", "order events")


def _run(settings: Settings, build: Build, port_setting: str, what: str) -> None:
    with serving(settings, build, port_setting) as (host, _, _):
        started, last = time.monotonic(), [0.0]

        def progress(done: int) -> None:
            now = time.monotonic()
            if sys.stderr.isatty() and now - last[0] >= 1:
                last[0] = now
                rate = done / max(now - started, 1e-9)
                print(f"\r{done:,} {what} processed ({rate:,.0f}/s)", end="", file=sys.stderr)

        with stop_on_signals() as stop:
            host.run(stop, progress)
    log.info("stopped after %d %s", host.processed, what)
