"""A thin, typed layer over confluent-kafka: one configuration merge per client kind, and
the few admin operations stockflow needs. No business logic lives here."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stockflow import StockflowError
from stockflow.settings import Settings

__all__ = [
    "DeliveryFailures",
    "TopicsError",
    "admin",
    "consumer",
    "create_topics",
    "partition_counts",
    "producer",
    "require_copartitioned",
]


class TopicsError(StockflowError):
    """The input topics are missing or not co-partitioned."""


def _merge(settings: Settings, own: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    return {**settings.kafka_common(), "client.id": settings.client_id, **own, **(extra or {})}


def consumer(settings: Settings, extra: dict[str, Any] | None = None) -> Consumer:
    """The processor's consumer. Positions live in Postgres, so Kafka never auto-commits;
    the range assignor gives one member the same partition number of every input topic."""
    own: dict[str, Any] = {
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        "fetch.min.bytes": 1,
        "queued.max.messages.kbytes": 65536,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(500, settings.session_timeout_ms // 5),
        "max.poll.interval.ms": 300000,
    }
    if settings.group_instance_id:
        own["group.instance.id"] = settings.group_instance_id
    return Consumer(_merge(settings, own, extra))


def producer(settings: Settings, extra: dict[str, Any] | None = None) -> Producer:
    """An idempotent producer with Java's murmur2 partitioning, so keys land where Java
    clients would put them."""
    return Producer(_merge(settings, {
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "none",
    }, extra))


class DeliveryFailures:
    """A producer's failed deliveries. Configured (`config()`) as the producer's only
    delivery callback with `delivery.report.only.error`, so a delivered message costs no
    Python call: about 1 us less per message than a callback per `produce` (measured)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.messages.append(f"{msg.topic()}: {err}")

    def config(self) -> dict[str, Any]:
        return {"delivery.report.only.error": True, "on_delivery": self}


def admin(settings: Settings) -> AdminClient:
    return AdminClient(settings.kafka_common())


def partition_counts(client: AdminClient, names: list[str]) -> dict[str, int | None]:
    """Partition count per topic; None where the topic does not exist."""
    meta = client.list_topics(timeout=15)
    counts: dict[str, int | None] = {}
    for name in names:
        topic = meta.topics.get(name)
        counts[name] = None if topic is None or topic.error is not None else len(topic.partitions)
    return counts


def require_copartitioned(client: AdminClient, inputs: list[str]) -> int:
    """The shared partition count of the input topics, or a clear refusal."""
    counts = partition_counts(client, inputs)
    missing = [t for t, n in counts.items() if n is None]
    if missing:
        raise TopicsError(f"input topics missing: {', '.join(missing)} "
                             "(run `stockflow topics create`)")
    if len(set(counts.values())) != 1:
        shown = ", ".join(f"{t}={n}" for t, n in counts.items())
        raise TopicsError(f"input topics must be co-partitioned (same partition count): {shown}")
    return next(n for n in counts.values() if n is not None)


def create_topics(client: AdminClient, names: list[str], partitions: int,
                  replication: int) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created."""
    existing = partition_counts(client, names)
    wanted = [NewTopic(n, partitions, replication) for n, c in existing.items() if c is None]
    if not wanted:
        return []
    created = []
    for name, fut in client.create_topics(wanted, operation_timeout=30).items():
        try:
            fut.result(60)
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created
