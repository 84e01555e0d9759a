"""Turns the rules' outputs and the parser's rejections into Kafka messages.

Output ids are derived from the cause event id, the output type and its line, so a
re-emitted output carries the same id and consumers can de-duplicate on it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from stockflow.domain.effects import Output
from stockflow.events import Rejection, TopicKind
from stockflow.outbox import Message
from stockflow.topics import Topics

__all__ = ["SOURCE", "data_json", "dlq_message", "output_id", "output_message"]

SOURCE = "stockflow"
_NS = uuid.UUID("5e0c4f10-9b1f-4c55-a3f5-6b0a3c1d2e7f")


def output_id(cause_id: str, type_: str, line: str) -> str:
    """uuid5(namespace, cause, type, line), computed without building UUID objects (this
    runs for every output on the hot path); equal to `uuid.uuid5`."""
    d = bytearray(hashlib.sha1(_NS_BYTES + f"{cause_id}\x1f{type_}\x1f{line}".encode(),
                               usedforsecurity=False).digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x50
    d[8] = (d[8] & 0x3F) | 0x80
    h = d.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NS_BYTES = _NS.bytes
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


_PLAIN = re.compile(r"[A-Za-z0-9 ._:/@+=-]*")


def _string(value: str) -> str:
    return f'"{value}"' if _PLAIN.fullmatch(value) else json.dumps(value, ensure_ascii=False)


def _stock_changed(d: Mapping[str, Any]) -> str:
    """stock.changed, about half of all outputs, without the generic encoder. sku and
    warehouse come from a validated key; every other value is an int, or escaped."""
    dl, c = d["delta"], d["cause"]
    return (f'{{"sku":"{d["sku"]}","warehouse":"{d["warehouse"]}","on_hand":{d["on_hand"]},'
            f'"reserved":{d["reserved"]},"available":{d["available"]},'
            f'"in_transit":{d["in_transit"]},"damaged":{d["damaged"]},'
            f'"version":{d["version"]},"delta":{{"on_hand":{dl["on_hand"]},'
            f'"reserved":{dl["reserved"]},"in_transit":{dl["in_transit"]},'
            f'"damaged":{dl["damaged"]}}},"cause":{{"event_id":{_string(c["event_id"])},'
            f'"type":{_string(c["type"])}}}}}')


def data_json(out: Output) -> str:
    """The JSON of an output's data."""
    if out.type == "stock.changed":
        return _stock_changed(out.data)
    return _dumps(out.data)


def output_message(topics: Topics, cause_id: str, out: Output, now: str) -> Message:
    """The output as a CloudEvents envelope. `now` is the batch's RFC 3339 time. Built by
    formatting around the JSON of its data: every spliced value is an id, a fixed type
    name or a validated key, none of which needs JSON escaping."""
    subject = "" if out.topic is TopicKind.RESERVATIONS else f',"subject":"{out.key}"'
    value = (f'{{"specversion":"1.0","id":"{output_id(cause_id, out.type, out.line)}",'
             f'"source":"{SOURCE}","type":"{out.type}","time":"{now}",'
             f'"datacontenttype":"application/json"{subject},"data":{data_json(out)}}}')
    return Message(topics.name(out.topic), out.key.encode(), value.encode())


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
