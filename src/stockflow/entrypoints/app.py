"""The composition root: settings in, a wired processor out. Tests and the CLI both use it."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
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
from stockflow.contract.topics import Topics
from stockflow.engine.checkpoint import Checkpoint
from stockflow.engine.host import Host
from stockflow.engine.stock import StockDecider
from stockflow.engine.writer import Writer
from stockflow.settings import Settings

__all__ = ["Serving", "build_processor", "database", "migrated_database", "run_processor",
           "serving", "stop_on_signals"]

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
    topics = Topics(settings.topic_prefix)
    health = health or Health()
    observer = observer or NullObserver()
    watch = health.brokers  # every client's errors and outages, and readiness
    require_copartitioned(admin(settings, watch), topics.inputs)

    def connect(autocommit: bool) -> store.Conn:
        return database(settings, autocommit=autocommit)

    migrated_database(settings).close()
    failures = DeliveryFailures()
    kafka_producer = producer(settings, failures.config(), watch)
    batches = PgBatchStore(connect, settings.group_id)
    checkpoint = Checkpoint(store=batches, producer=kafka_producer, failures=failures,
                            flush_timeout=FLUSH_TIMEOUT)
    decider = StockDecider(topics=topics, policy=settings.policy(), limits=settings.limits(),
                           cache_entries=settings.cache_max_entries)
    return Host(
        consumer=consumer(settings, watch=watch), producer=kafka_producer, store=batches,
        decider=decider, writer=Writer(checkpoint, observer), group=settings.group_id,
        observer=observer, health=health, batch_max=settings.batch_max_messages,
        idle_wait=settings.idle_wait, sweep_interval=settings.sweep_interval,
        give_up=settings.outage_give_up,
    )


@contextmanager
def stop_on_signals(then: Callable[[], None] | None = None) -> Iterator[threading.Event]:
    """A stop flag set by SIGINT/SIGTERM, which also call `then`; the previous handlers
    come back afterwards."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: finishing the work in hand", signal.Signals(signum).name)
        stop.set()
        if then is not None:
            then()

    old = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Serving(NamedTuple):
    processor: Host
    registry: CollectorRegistry
    metrics_port: int  # where /metrics is: the configured port, or the one 0 picked


@contextmanager
def serving(settings: Settings) -> Iterator[Serving]:
    """A wired processor with /metrics, /healthz and /readyz served; all closed after."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # resident memory, CPU seconds, open files
    kafka = KafkaMetrics(registry)
    health = Health(brokers=BrokerWatch(counted=kafka.error, reachable=kafka.reachable))
    server = serve(settings.metrics_host, settings.metrics_port, registry, health,
                   setting=Settings.variable("metrics_port"))
    port = int(server.server_address[1])
    try:
        observer = PrometheusObserver(registry)
        processor = build_processor(settings, observer=observer, health=health)
        tune_gc()
        log.info("processing; metrics on :%d/metrics", port)
        try:
            with gc_watched(observer):
                yield Serving(processor, registry, port)
        finally:
            processor.close()
    finally:
        server.shutdown()


def run_processor(settings: Settings) -> None:
    """Run the processor with metrics and health endpoints until stopped."""
    with serving(settings) as (processor, _, _):
        started, last = time.monotonic(), [0.0]

        def progress(done: int) -> None:
            now = time.monotonic()
            if sys.stderr.isatty() and now - last[0] >= 1:
                last[0] = now
                rate = done / max(now - started, 1e-9)
                print(f"\r{done:,} events processed ({rate:,.0f}/s)", end="", file=sys.stderr)

        with stop_on_signals() as stop:
            processor.run(stop, progress)
    log.info("stopped after %d events", processor.processed)
