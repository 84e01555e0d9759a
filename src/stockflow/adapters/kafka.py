"""A thin, typed layer over confluent-kafka: one configuration merge per client kind, and
the few admin operations stockflow needs. No business logic lives here."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stockflow import StockflowError
from stockflow.adapters.broker_watch import BrokerWatch
from stockflow.adapters.settings import Settings
from stockflow.contract.emit import Message as Outgoing
from stockflow.contract.topics import TP

__all__ = [
    "DeliveryFailures",
    "TopicsError",
    "admin",
    "age",
    "backlog",
    "consumer",
    "create_topics",
    "headers_of",
    "mirror_positions",
    "partition_counts",
    "produce_all",
    "producer",
    "reader",
    "require_copartitioned",
    "take_arrived",
    "watch_brokers",
]

log = logging.getLogger("stockflow.adapters.kafka")


class TopicsError(StockflowError):
    """The input topics are missing or not co-partitioned."""


# The watch of every client whose caller brings none (the CLI's, the publisher's): its
# outages are told once, like the processor's, without metrics.
_SHARED = BrokerWatch()


def _merge(settings: Settings, own: dict[str, Any], extra: dict[str, Any] | None,
           watch: BrokerWatch | None) -> dict[str, Any]:
    # librdkafka's errors and log lines go to the watch, which tells them through Python
    # logging (JSON like the rest) instead of stderr. Notices and worse only: its
    # informational lines, some written while a client is destroyed after Python logging
    # has gone, say nothing an operator acts on.
    watch = watch_brokers(settings, watch or _SHARED)
    return {**_common(settings), **watch.config(), **own, **(extra or {})}


def _common(settings: Settings) -> dict[str, Any]:
    return {**settings.kafka_common(), "client.id": settings.client_id, "log_level": 5}


def watch_brokers(settings: Settings, watch: BrokerWatch) -> BrokerWatch:
    """`watch`, set to probe the configured brokers while none answers (see BrokerWatch)."""
    watch.probe_with(_common(settings))
    return watch


def consumer(settings: Settings, extra: dict[str, Any] | None = None,
             watch: BrokerWatch | None = None) -> Consumer:
    """The processor's consumer. Positions live in Postgres, so Kafka never auto-commits;
    the range assignor gives one member the same partition number of every input topic.

    A static member only when `group_instance_id` is set. The session timeout (default
    45 s, Kafka's own) is what lets a member ride out a broker restart: librdkafka forgets
    its member id once its session has timed out locally, and a restarted broker then made
    the rejoining member wait until the member it had been expired, a whole session
    timeout after the broker was back (7.2 s with a 6 s timeout, 10 s with 10 s). A
    member whose session outlasts the outage keeps its place and resumes as soon as the
    broker answers. Making every member static instead was tried: after a broker restart
    a static member that rejoins is sometimes fenced by its own new incarnation, which
    librdkafka treats as fatal (twice in a row in the suite's outage test; a known
    librdkafka behaviour)."""
    own: dict[str, Any] = {
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        # The broker holds a fetch until 64 KiB have gathered or `batch_gather_ms` have
        # passed: a fetch per produced message (fetch.min.bytes 1) cost the local broker
        # ~0.4 of a core at 1,000 events/s (measured).
        "fetch.min.bytes": 65536,
        "fetch.wait.max.ms": settings.batch_gather_ms,
        "queued.max.messages.kbytes": 65536,
        "session.timeout.ms": settings.session_timeout_ms,
        # Kafka's 3 s at most: members learn of a rebalance by their next heartbeat
        "heartbeat.interval.ms": max(500, min(3000, settings.session_timeout_ms // 5)),
        "max.poll.interval.ms": 300000,
    }
    if settings.group_instance_id:
        own["group.instance.id"] = settings.group_instance_id
    return Consumer(_merge(settings, own, extra, watch))


def reader(settings: Settings) -> Consumer:
    """A consumer in no group of its own making: it reads where it is assigned (committed
    transactions only), commits nothing, and says when a partition's end is reached."""
    return Consumer(_merge(settings, {
        "group.id": f"stockflow-reader-{uuid.uuid4().hex}", "enable.auto.commit": False,
        "enable.partition.eof": True, "isolation.level": "read_committed"}, None, None))


def backlog(settings: Settings, names: list[str], committed: dict[TP, int],
            timeout: float = 5.0) -> int:
    """Messages on the topics `names` past the `committed` next offsets (a partition with
    none committed counts from its start): how far behind its consumers are."""
    client = reader(settings)
    try:
        behind = 0
        for name in names:
            for p in client.list_topics(name, timeout=timeout).topics[name].partitions:
                low, high = client.get_watermark_offsets(TopicPartition(name, p),
                                                         timeout=timeout)
                behind += max(0, high - max(low, committed.get((name, p), low)))
        return behind
    finally:
        client.close()


def producer(settings: Settings, extra: dict[str, Any] | None = None,
             watch: BrokerWatch | None = None) -> Producer:
    """An idempotent producer with Java's murmur2 partitioning, so keys land where Java
    clients would put them."""
    return Producer(_merge(settings, {
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "none",
    }, extra, watch))


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
        """The producer settings that report failed deliveries, and only those, here."""
        return {"delivery.report.only.error": True, "on_delivery": self}

    def take(self) -> list[str]:
        """The failures reported so far, forgetting them."""
        taken, self.messages = self.messages, []
        return taken


def produce_all(producer: Producer, messages: Iterable[Outgoing]) -> int:
    """Queue every message, serving delivery reports whenever librdkafka's queue is full;
    returns how many were queued. The one way stockflow hands messages to a producer."""
    produce, n = producer.produce, 0
    for topic, key, value, headers in messages:
        while True:
            try:
                if headers:
                    produce(topic, value, key, headers=list(headers))
                else:
                    produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
    producer.poll(0)
    return n


def take_arrived(consumer: Consumer, most: int, wait: float) -> list[Message]:
    """Every message the consumer holds, up to `most`, waiting up to `wait` seconds only
    while it holds none."""
    msgs = consumer.consume(num_messages=most, timeout=0)
    if not msgs:
        msgs = consumer.consume(num_messages=1, timeout=wait)
        if msgs and most > 1:
            msgs += consumer.consume(num_messages=most - 1, timeout=0)
    return msgs


def age(msg: Message) -> float:
    """Seconds since the message was published (its producer's CreateTime), 0 if unknown."""
    kind, millis = msg.timestamp()
    return max(0.0, time.time() - millis / 1000) if kind == TIMESTAMP_CREATE_TIME else 0.0


def mirror_positions(consumer: Consumer, positions: dict[TP, int]) -> None:
    """Copy committed positions to the group's Kafka offsets, asynchronously, for lag tools
    and autoscalers (KEDA, kafka-consumer-groups); Postgres stays their only source."""
    if not positions:
        return
    try:
        consumer.commit(offsets=[TopicPartition(t, p, n) for (t, p), n in positions.items()],
                        asynchronous=True)
    except KafkaException as exc:  # visibility only: never stop processing for it
        log.warning("could not mirror offsets to Kafka: %s", exc)


def headers_of(raw: Any) -> list[tuple[str, bytes]]:
    """A consumed message's headers, every value as bytes (a null value as empty)."""
    return [(k, v if isinstance(v, bytes) else str(v or "").encode()) for k, v in raw]


def admin(settings: Settings, watch: BrokerWatch | None = None) -> AdminClient:
    """An admin client on `settings`, its errors told to `watch`."""
    # Its log lines too go through Python logging: at destruction, an admin client left to
    # the garbage collector wrote a notice of its own on stderr ("Purging ... background
    # queue"), whenever the collector came by.
    return AdminClient(_merge(settings, {}, None, watch))


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
