"""One batch as the engine carries it from deciding to writing: what was consumed, the
decider's rows, the outgoing messages framed per partition (the outbox) and the offsets."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from stockflow.adapters.db.batches import Advance, Offsets, OutboxRow, Rows
from stockflow.adapters.observer import BatchReport
from stockflow.adapters.outbox import encode
from stockflow.contract.emit import Message, dlq_message
from stockflow.contract.events import Reason, Rejection
from stockflow.contract.topics import TP, TopicKind, Topics

__all__ = ["Consumed", "Prepared", "dead_letter", "framed", "offsets_of"]

log = logging.getLogger("stockflow.engine.batch")


class Consumed(NamedTuple):
    """One message as consumed, reduced to what deciding needs."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


@dataclass
class Prepared:
    """A decided batch: `rows` and `outbox` go into its transaction with `offsets`;
    `messages` are the outbox's contents, emitted once it is committed."""

    batch: list[Consumed]
    rows: Rows
    messages: list[Message]
    outbox: list[OutboxRow]
    offsets: Offsets
    report: BatchReport
    event_times: list[float] = field(default_factory=list)  # of applied events, for latency
    started: float = field(default_factory=time.monotonic)
    decided: float = 0.0  # when deciding ended (monotonic)


def framed(by_partition: Mapping[int, list[Message]]) -> tuple[list[OutboxRow], list[Message]]:
    """The outbox rows (one per partition, so a partition's next owner re-emits its own)
    and the messages in the order they are emitted."""
    rows, messages = [], []
    for part, msgs in sorted(by_partition.items()):
        rows.append(OutboxRow(partition=part, messages=len(msgs), payload=encode(msgs)))
        messages.extend(msgs)
    return rows, messages


def offsets_of(batch: list[Consumed], positions: Mapping[TP, int],
               ends: Mapping[TP, int]) -> Offsets:
    """Each partition's move: from where this member believes it is to past the batch (or
    to the consumer's position `ends`, past transaction markers, when known)."""
    last: dict[TP, int] = {}
    for m in batch:
        # max, not last: after a rebalance one batch can hold a partition's messages twice
        tp = (m.topic, m.partition)
        last[tp] = max(last.get(tp, -1), m.offset)
    return {tp: Advance(expected=positions.get(tp, -1), to=max(off + 1, ends.get(tp, -1)))
            for tp, off in last.items()}


def dead_letter(topics: Topics, msg: Consumed, rejection: Rejection, kind: TopicKind,
                report: BatchReport, out: dict[int, list[Message]],
                exc: BaseException | None = None) -> None:
    """Send `msg` to the DLQ with its rejection (in the batch's outbox), say so and count it."""
    level = logging.WARNING if rejection.reason is Reason.PROCESSING_ERROR else logging.INFO
    log.log(level, "rejected to the DLQ: %s", rejection.message, exc_info=exc, extra={
        "event_id": rejection.event_id, "key": (msg.key or b"")[:200].decode("utf-8", "replace"),
        "reason": rejection.reason.value, "topic": msg.topic, "partition": msg.partition,
        "offset": msg.offset})
    report.rejects[rejection.reason.value] += 1
    report.events[(kind.value, rejection.event_type or "unknown", "rejected")] += 1
    out.setdefault(msg.partition, []).append(dlq_message(
        topics, rejection, msg.topic, msg.partition, msg.offset, msg.key, msg.value,
        msg.headers))
