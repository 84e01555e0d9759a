"""Turns the rules' outputs and the parser's rejections into Kafka messages.

Output ids are derived from the cause event id, the output type and its line, so a
re-emitted output carries the same id and consumers can de-duplicate on it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from stockflow.domain.effects import Output
from stockflow.events import Rejection, TopicKind
from stockflow.outbox import Message
from stockflow.topics import Topics

__all__ = ["SOURCE", "dlq_message", "output_id", "output_message"]

SOURCE = "stockflow"
_NS = uuid.UUID("5e0c4f10-9b1f-4c55-a3f5-6b0a3c1d2e7f")


def output_id(cause_id: str, type_: str, line: str) -> str:
    return str(uuid.uuid5(_NS, f"{cause_id}\x1f{type_}\x1f{line}"))


def output_message(topics: Topics, cause_id: str, out: Output, now: datetime) -> Message:
    subject = out.key if out.topic is not TopicKind.RESERVATIONS else None
    doc = {
        "specversion": "1.0",
        "id": output_id(cause_id, out.type, out.line),
        "source": SOURCE,
        "type": out.type,
        "time": now.isoformat(),
        "datacontenttype": "application/json",
        **({"subject": subject} if subject else {}),
        "data": out.data.model_dump(mode="json", exclude_none=True),
    }
    value = json.dumps(doc, separators=(",", ":")).encode()
    return Message(topics.name(out.topic), out.key.encode(), value)


def dlq_message(
    topics: Topics, rejection: Rejection, topic: str, partition: int, offset: int,
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None = None,
) -> Message:
    """The rejected input, byte for byte, with why and where it came from in headers."""
    why = [
        ("stockflow.error.reason", rejection.reason.value.encode()),
        ("stockflow.error.message", rejection.message[:1000].encode()),
        ("stockflow.error.topic", topic.encode()),
        ("stockflow.error.partition", str(partition).encode()),
        ("stockflow.error.offset", str(offset).encode()),
    ]
    return Message(topics.name(TopicKind.DLQ), key, value, [*(headers or []), *why])
