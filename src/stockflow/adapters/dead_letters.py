"""The dead-letter topic read back: its newest messages, one by its place, and a re-drive
of one to where it came from once its cause is fixed. Kafka is the only record: the DLQ
holds each rejected input byte for byte with why and where from in `stockflow.error.*`
headers (`contract.emit.dlq_message`).

Re-driving sends the original key, value and own headers to the original topic and
partition, so its key meets the same consumer as before. The event keeps its id: if it
was in fact applied since, the processor counts it a duplicate; if its cause is not
fixed, it comes back to the DLQ. Re-driving twice is therefore harmless."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, TopicPartition

from stockflow import StockflowError
from stockflow.adapters.kafka import headers_of, producer, reader
from stockflow.adapters.settings import Settings
from stockflow.contract.topics import INPUTS, TopicKind, Topics

__all__ = ["DeadLetter", "RedriveRefusedError", "newest", "one", "redrive"]

_ERROR = "stockflow.error."
REDRIVEN_FROM = "stockflow.redriven-from"  # header on a re-driven message: dlq partition:offset
_REDRIVABLE = (*INPUTS, TopicKind.ORDER_REQUESTS)  # the topics stockflow consumes


class RedriveRefusedError(StockflowError):
    """The message cannot be sent back as it was (cut short, or from a foreign topic)."""


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ message: where it is, why it is there, and the original it carries."""

    partition: int
    offset: int
    at: datetime | None  # when it was dead-lettered
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]  # the original's own, without stockflow.error.*
    reason: str
    message: str
    topic: str  # where the original was read
    source_partition: int
    source_offset: int
    truncated: int | None  # the original value's length, when it was cut to fit

    @property
    def place(self) -> str:
        """How to name it: PARTITION:OFFSET of the DLQ."""
        return f"{self.partition}:{self.offset}"

    def doc(self) -> dict[str, Any]:
        """As JSON: the original's key, value and headers as text when UTF-8, else hex."""
        return {"place": self.place,
                "dead_lettered_at": self.at.isoformat() if self.at else None,
                "reason": self.reason, "message": self.message,
                "from": {"topic": self.topic, "partition": self.source_partition,
                         "offset": self.source_offset},
                "key": _shown(self.key), "value": _shown(self.value),
                "headers": {k: _shown(v) for k, v in self.headers},
                "truncated_from": self.truncated}

    @property
    def event(self) -> dict[str, Any] | None:
        """The original as JSON, when it is a JSON object."""
        try:
            found = json.loads(self.value or b"")
        except ValueError:  # not JSON, or not UTF-8
            return None
        return found if isinstance(found, dict) else None


def _shown(data: bytes | None) -> dict[str, str] | None:
    if data is None:
        return None
    try:
        return {"text": data.decode()}
    except UnicodeDecodeError:
        return {"hex": data.hex()}


def _letter(msg: Any) -> DeadLetter:
    headers = headers_of(msg.headers() or [])
    error = {k.removeprefix(_ERROR): v.decode("utf-8", "replace")
             for k, v in headers if k.startswith(_ERROR)}
    kind, millis = msg.timestamp()
    return DeadLetter(
        msg.partition(), msg.offset(),
        None if kind == TIMESTAMP_NOT_AVAILABLE else datetime.fromtimestamp(millis / 1000, UTC),
        msg.key(), msg.value(), [(k, v) for k, v in headers if not k.startswith(_ERROR)],
        error.get("reason", ""), error.get("message", ""), error.get("topic", ""),
        int(error.get("partition", "-1") or -1), int(error.get("offset", "-1") or -1),
        int(error["truncated"]) if "truncated" in error else None)


def _read(consumer: Consumer, spans: dict[int, tuple[int, int]],
          timeout: float) -> list[DeadLetter]:
    """Every message of each assigned partition from its span's start up to its end."""
    open_ = {p for p, (start, end) in spans.items() if start < end}
    found = []
    while open_:
        msg = consumer.poll(timeout)
        if msg is None:
            break  # nothing more came in time
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001 - librdkafka's name
                open_.discard(msg.partition())
            continue
        partition, offset = msg.partition() or 0, msg.offset() or 0
        if offset < spans[partition][1]:
            found.append(_letter(msg))
        if offset + 1 >= spans[partition][1]:
            open_.discard(partition)
    return found


def newest(settings: Settings, topics: Topics, limit: int, *, reason: str | None = None,
           timeout: float = 10.0) -> list[DeadLetter]:
    """Up to `limit` of the DLQ's newest messages (with `reason`, if given), newest first."""
    name = topics.name(TopicKind.DLQ)
    dlq_reader = reader(settings)
    try:
        partitions = dlq_reader.list_topics(name, timeout=timeout).topics[name].partitions
        starts = {}
        for p in partitions:
            low, high = dlq_reader.get_watermark_offsets(TopicPartition(name, p), timeout=timeout)
            starts[p] = (max(low, high - limit * (1 if reason is None else 20)), high)
        dlq_reader.assign([TopicPartition(name, p, start) for p, (start, _) in starts.items()])
        found = _read(dlq_reader, starts, timeout)
    finally:
        dlq_reader.close()
    found = [d for d in found if reason is None or d.reason == reason]
    found.sort(key=lambda d: (d.at or datetime.min.replace(tzinfo=UTC), d.partition,
                              d.offset), reverse=True)
    return found[:limit]


def one(settings: Settings, topics: Topics, partition: int, offset: int,
        timeout: float = 10.0) -> DeadLetter | None:
    """The DLQ message at `partition`:`offset`, or None when there is none (any more)."""
    name = topics.name(TopicKind.DLQ)
    dlq_reader = reader(settings)
    try:
        low, high = dlq_reader.get_watermark_offsets(TopicPartition(name, partition),
                                                 timeout=timeout)
        if not low <= offset < high:
            return None
        dlq_reader.assign([TopicPartition(name, partition, offset)])
        found = _read(dlq_reader, {partition: (offset, offset + 1)}, timeout)
    finally:
        dlq_reader.close()
    return next((d for d in found if d.offset == offset), None)


def redrive(settings: Settings, topics: Topics, letter: DeadLetter,
            timeout: float = 30.0) -> None:
    """Send `letter`'s original back to its topic and partition (see the module's note);
    RedriveRefusedError when it was cut short or came from a topic stockflow does not read."""
    if letter.truncated is not None:
        raise RedriveRefusedError(f"{letter.place} was cut from {letter.truncated:,} bytes to fit "
                            "the DLQ: the original is lost; send it again from its source")
    kinds = {topics.name(kind) for kind in _REDRIVABLE}
    if letter.topic not in kinds or letter.source_partition < 0:
        raise RedriveRefusedError(f"{letter.place} came from {letter.topic or 'nowhere known'!r}, "
                            "which stockflow does not read")
    sender = producer(settings)
    sender.produce(letter.topic, letter.value, letter.key, partition=letter.source_partition,
                   headers=[*letter.headers, (REDRIVEN_FROM, letter.place.encode())])
    if sender.flush(timeout) != 0:
        raise StockflowError(f"Kafka did not take the re-driven {letter.place} in "
                             f"{timeout:.0f} s; nothing was sent")
