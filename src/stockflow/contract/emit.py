"""Turns the rules' outputs and the parser's rejections into Kafka messages.

Output ids are derived from the cause event id, the output type and its line, so a
re-emitted output carries the same id and consumers can de-duplicate on it. The order
coordinator's outputs (`order_message`) derive theirs from the order_id instead of a
cause: each (type, line) comes at most once in an order's life, whichever event led to it.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import NamedTuple

from pydantic_core import to_json

from stockflow.contract.events import INPUT_MODELS, Rejection
from stockflow.contract.outputs import OUTPUT_MODELS
from stockflow.contract.topics import TopicKind, Topics
from stockflow.domain.effects import Output

__all__ = ["COORDINATOR_SOURCE", "DLQ_MAX_BYTES", "SOURCE", "Message", "dlq_message",
           "order_message", "output_id", "output_message", "topic_of"]


class Message(NamedTuple):
    """An outgoing Kafka message."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


# The rules say what an output is; the contract says where it goes: the outputs' topics,
# and transfer.incoming, which the processor forwards onto the receipts topic as an input.
_TOPIC_OF = {t: kind for t, (kind, _) in (*INPUT_MODELS.items(), *OUTPUT_MODELS.items())}


def topic_of(output_type: str) -> TopicKind:
    """The topic an output event of this type goes to."""
    return _TOPIC_OF[output_type]

SOURCE = "stockflow"
COORDINATOR_SOURCE = "stockflow-coordinator"  # the source of what the coordinator writes
# What one DLQ message may carry: inside the default message size limits of librdkafka's
# producer (1,000,000 bytes) and of a broker's topic (1,048,588), with room to spare.
DLQ_MAX_BYTES = 900_000
_NS = uuid.UUID("5e0c4f10-9b1f-4c55-a3f5-6b0a3c1d2e7f")


def output_id(cause_id: str, type_: str, line: str) -> str:
    """uuid5(namespace, cause, type, line), equal to `uuid.uuid5` but without building UUID
    objects: this runs for every output on the hot path."""
    h = _NS_SHA1.copy()
    h.update(f"{cause_id}\x1f{type_}\x1f{line}".encode())
    x = h.hexdigest()
    # version 5 in the 13th hex digit; the RFC 4122 variant (10xx) in the 17th
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


_NS_SHA1 = hashlib.sha1(_NS.bytes, usedforsecurity=False)
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def output_message(topics: Topics, cause_id: str, out: Output, now: str) -> Message:
    """The output as a CloudEvents envelope. `now` is the batch's RFC 3339 time.
    The envelope's fixed parts are written once per type and joined around the id, time,
    subject and data, each written by pydantic-core's serializer (about four times faster
    than `json`): the bytes `to_json` gives for the whole envelope as a dict, without
    building that dict per output (this runs for every output on the hot path)."""
    kind = _TOPIC_OF[out.type]
    return Message(topics.name(kind), out.key.encode(), b"".join((
        b'{"specversion":"1.0","id":"', output_id(cause_id, out.type, out.line).encode(),
        _SOURCE_AND_TYPE.get(out.type) or _source_and_type(out.type), to_json(now),
        b',"datacontenttype":"application/json"',
        b"" if kind is TopicKind.RESERVATIONS else b',"subject":' + to_json(out.key),
        b',"data":', to_json(out.data), b"}")))


_SOURCE_AND_TYPE: dict[str, bytes] = {}


def _source_and_type(type_: str) -> bytes:
    got = _SOURCE_AND_TYPE[type_] = (
        b'","source":' + to_json(SOURCE) + b',"type":' + to_json(type_) + b',"time":')
    return got


def order_message(topics: Topics, kind: TopicKind, order_id: str, out: Output,
                  now: str, on_behalf_of: str = "") -> Message:
    """A command of the order coordinator (`kind` ORDERS: a part's order.placed, confirmed or
    cancelled, keyed SKU@WH, with that key as subject as the processor checks it) or a status
    (ORDER_STATUS, keyed order_id), as a CloudEvents envelope. The id is uuid5 of the
    order_id, the type and the output's line (`output_id`). The source is the coordinator's,
    followed by `/on_behalf_of` when given: the ledger's actor for a part names both."""
    source = f"{COORDINATOR_SOURCE}/{on_behalf_of}" if on_behalf_of else COORDINATOR_SOURCE
    envelope: dict[str, object] = {
        "specversion": "1.0", "id": output_id(order_id, out.type, out.line),
        "source": source, "type": out.type, "time": now,
        "datacontenttype": "application/json"}
    if kind is TopicKind.ORDERS:
        envelope["subject"] = out.key
    elif kind is not TopicKind.ORDER_STATUS:
        raise ValueError(f"the order coordinator writes onto orders and order-status, not "
                         f"{kind.value}")
    envelope["data"] = out.data
    return Message(topics.name(kind), out.key.encode(), to_json(envelope))


def dlq_message(
    topics: Topics, rejection: Rejection, topic: str, partition: int, offset: int,
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None = None,
) -> Message:
    """The rejected input, byte for byte, with why and where it came from in headers.

    An input too large for the DLQ with them (it can only come from a topic that allows
    larger messages than stockflow's DLQ) loses its own headers first, then the end of its
    value; `stockflow.error.truncated` then holds the original value's length. A DLQ
    message that could not be delivered at all would block its partition for good."""
    why = [
        ("stockflow.error.reason", rejection.reason.value.encode()),
        ("stockflow.error.message", rejection.message[:1000].encode("utf-8", "replace")),
        ("stockflow.error.topic", topic.encode()),
        ("stockflow.error.partition", str(partition).encode()),
        ("stockflow.error.offset", str(offset).encode()),
    ]
    own = list(headers or ())
    if key is not None and len(key) > DLQ_MAX_BYTES // 2:  # no real key is anywhere near
        why.append(("stockflow.error.key-truncated", str(len(key)).encode()))
        key = key[:DLQ_MAX_BYTES // 2]
    room = DLQ_MAX_BYTES - len(key or b"") - _size(why) - 100
    if len(value or b"") + _size(own) > room:
        own = []
        if value is not None and len(value) > room:
            why.append(("stockflow.error.truncated", str(len(value)).encode()))
            value = value[:room]
    return Message(topics.name(TopicKind.DLQ), key, value, (*own, *why))


def _size(headers: list[tuple[str, bytes]]) -> int:
    return sum(len(name) + len(data) + 16 for name, data in headers)
