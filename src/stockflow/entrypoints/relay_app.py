"""Composition root of the webhook relay (`stockflow relay`): settings in, the intake and
the delivery running on one event loop until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from prometheus_client import CollectorRegistry, ProcessCollector

from stockflow.adapters.aiokafka_logs import tell_errors_to
from stockflow.adapters.broker_watch import BrokerWatch
from stockflow.adapters.db import store
from stockflow.adapters.health import Health, serve
from stockflow.adapters.kafka import watch_brokers
from stockflow.adapters.kafka_metrics import KafkaMetrics
from stockflow.adapters.relay_consumer import relay_consumer
from stockflow.adapters.relay_metrics import RelayMetrics
from stockflow.adapters.settings import Settings
from stockflow.contract.topics import Topics
from stockflow.entrypoints.app import database, migrated_database
from stockflow.usecases.webhooks import guard_policy, secret_box

__all__ = ["run_relay"]

log = logging.getLogger("stockflow.relay")


def run_relay(settings: Settings) -> None:
    """Run the relay until SIGTERM or SIGINT, with /metrics, /healthz and /readyz on
    STOCKFLOW_RELAY_METRICS_PORT."""
    # aiohttp and aiokafka load only here: the other commands stay quick to start
    from stockflow.engine.db_link import DbLink  # noqa: PLC0415
    from stockflow.engine.dispatch import Directory, Dispatcher  # noqa: PLC0415
    from stockflow.engine.relay import BATCH, RELAYED, Intake, run  # noqa: PLC0415

    def connect() -> store.Conn:
        return database(settings)

    migrated_database(settings).close()
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    # Readiness: live, partitions assigned, Postgres and a broker reachable. aiokafka waits
    # broker outages out; its errors are told to the watch, which says an outage once and
    # counts them, and probes the brokers while none answers.
    kafka = KafkaMetrics(registry)
    watch = watch_brokers(settings, BrokerWatch(counted=kafka.error,
                                                reachable=kafka.reachable))
    tell_errors_to(watch)
    # aiokafka's informational lines narrate its group protocol, a line per retry (ten in
    # the second after a broker restart); the intake says each assignment once. At DEBUG,
    # all.
    level = logging.getLogger().level
    logging.getLogger("aiokafka").setLevel(level if level <= logging.DEBUG
                                           else max(logging.WARNING, level))
    metrics, health = RelayMetrics(registry), Health(brokers=watch)

    def link(name: str) -> DbLink:
        return DbLink(connect, name=name, health=health, metrics=metrics)

    directory = Directory(secret_box(settings))
    dispatcher = Dispatcher(db=link("delivery"), directory=directory,
                            policy=settings.retry_policy(), guard=guard_policy(settings),
                            timeout=settings.webhook_timeout,
                            per_endpoint=settings.webhook_endpoint_concurrency,
                            total=settings.webhook_concurrency, metrics=metrics)
    server = serve(settings.metrics_host, settings.relay_metrics_port, registry, health,
                   setting=Settings.variable("relay_metrics_port"))
    log.info("relaying; metrics on :%d/metrics", server.server_address[1])
    topics = Topics(settings.topic_prefix)
    names = [topics.name(k) for k in RELAYED]

    def intake(consumer: object) -> Intake:
        return Intake(consumer, names, db=link("intake"), directory=directory,
                      dispatcher=dispatcher, metrics=metrics, health=health)

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await run(lambda: relay_consumer(settings, BATCH), intake, dispatcher, stop)

    try:
        asyncio.run(main())
    finally:
        server.shutdown()
