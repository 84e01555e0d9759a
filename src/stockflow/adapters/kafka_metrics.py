"""A process's Kafka clients for Prometheus, as its `BrokerWatch` reports them: errors by
kind, and whether a broker answers. The processor, the relay and the API each export them
on their own `/metrics` (the scrape job tells which)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["KafkaMetrics"]


class KafkaMetrics:
    """The Prometheus metrics of a process's Kafka clients: errors by kind, and whether a
    broker is reachable."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.errors = Counter(
            "stockflow_kafka_client_errors_total", "Errors this process's Kafka clients "
            "reported, by kind (librdkafka's error code: transport, all_brokers_down, "
            "resolve, timed_out, ...; aiokafka's: transport, coordinator, "
            "all_brokers_down); every failed connection attempt counts",
            ["kind"], registry=registry)
        self.up = Gauge("stockflow_kafka_reachable", "1 while a Kafka broker answers this "
                        "process's clients, 0 during an outage", registry=registry)
        for kind in ("transport", "all_brokers_down"):
            self.errors.labels(kind)

    def error(self, kind: str) -> None:
        """Count one client error of `kind`."""
        self.errors.labels(kind).inc()

    def reachable(self, ok: bool) -> None:
        """Whether a broker is reachable now."""
        self.up.set(1 if ok else 0)
