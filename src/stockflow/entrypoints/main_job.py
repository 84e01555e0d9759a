"""The main job with simulated traffic: processor, simulator and live view in one process,
the HTTP API and the webhook relay beside it, stopped by Ctrl-C or a duration, ending with
a summary read back from Postgres."""

from __future__ import annotations

import json
import logging
import threading
import time

from confluent_kafka import TopicPartition
from prometheus_client import CollectorRegistry

from stockflow.adapters.db import queries, store
from stockflow.adapters.kafka import consumer
from stockflow.adapters.publisher import Publisher
from stockflow.adapters.settings import Settings
from stockflow.adapters.signals import stop_on_signals
from stockflow.contract.topics import Topics
from stockflow.devtools.simulate import Simulation, Simulator
from stockflow.engine.host import Host
from stockflow.entrypoints.app import database, serving
from stockflow.entrypoints.companions import companions
from stockflow.entrypoints.console import View, summary, summary_table
from stockflow.entrypoints.tables import show

__all__ = ["run_simulated"]

log = logging.getLogger("stockflow")


def _behind(settings: Settings, conn: store.Conn) -> int:
    """Input messages not yet committed in Postgres."""
    topics = Topics(settings.topic_prefix)
    cons = consumer(settings, {"group.id": f"{settings.group_id}-watch"})
    try:
        meta = cons.list_topics(timeout=10)
        ends = {(t, p): cons.get_watermark_offsets(TopicPartition(t, p), 10)[1]
                for t in topics.inputs for p in meta.topics[t].partitions}
    finally:
        cons.close()
    done = queries.committed_positions(conn, settings.group_id)
    return sum(max(0, end - done.get(tp, 0)) for tp, end in ends.items())


def run_simulated(settings: Settings, *, rate: float, duration: float | None, skus: int,
                  refresh: float = 1.0, as_json: bool = False) -> int:
    """The main job with simulated traffic until `duration` or Ctrl-C; the exit status."""
    with serving(settings) as served, companions(settings) as beside:
        banner = beside.banner(f"http://127.0.0.1:{served.metrics_port}/metrics")
        return _drive(settings, served.processor, served.registry, banner, rate=rate,
                      duration=duration, skus=skus, refresh=refresh, as_json=as_json)


def _drive(settings: Settings, processor: Host, registry: CollectorRegistry,
           banner: list[str], *, rate: float, duration: float | None, skus: int,
           refresh: float, as_json: bool) -> int:
    publisher = Publisher(settings, source="stockflow-simulator")
    sim = Simulator(publisher, Simulation(skus=skus, rate=rate))
    stop_processor, stop_sim = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def process() -> None:
        try:
            processor.run(stop_processor)
        except BaseException as exc:  # noqa: BLE001 - reported below, and the job exits 1
            failures.append(exc)

    def simulate() -> None:
        sim.seed_stock()
        sim.run(stop_sim, duration)

    conn = database(settings)
    view = View(registry, conn, sim.published, banner)
    started = time.monotonic()
    workers = [threading.Thread(target=process, name="processor"),
               threading.Thread(target=simulate, name="simulator")]
    try:
        with stop_on_signals() as stop:
            for w in workers:
                w.start()
            while not stop.is_set() and workers[1].is_alive() and not failures:
                view.show()
                stop.wait(refresh)
            stop_sim.set()
            workers[1].join()
            publisher.close()
            deadline = time.monotonic() + 60  # let the processor catch up, unless Ctrl-C
            while not stop.is_set() and not failures and time.monotonic() < deadline \
                    and _behind(settings, conn):
                view.show()
                stop.wait(refresh)
        stop_processor.set()
        workers[0].join()
        view.show()
        figures = summary(conn, sim.published, time.monotonic() - started)
    finally:
        stop_processor.set()
        conn.close()
    if failures:
        log.error("the processor failed: %s", failures[0])
        return 1
    if as_json:
        print(json.dumps(figures))
    else:
        show(summary_table(figures))
    return 0
