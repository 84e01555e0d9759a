"""Outgoing Kafka messages, and their framing into one outbox blob per batch and partition."""

from __future__ import annotations

import struct

from stockflow.contract.emit import Message

__all__ = ["Message", "decode", "encode"]

_LEN = struct.Struct(">i")


def _framed(blob: bytes | None) -> bytes:
    return _NONE if blob is None else _LEN.pack(len(blob)) + blob


_NONE = _LEN.pack(-1)


def encode(messages: list[Message]) -> bytes:
    """Each message as its length-prefixed topic, key and value, then its header count and
    length-prefixed header names and values."""
    out: list[bytes] = []
    add, pack = out.append, _LEN.pack
    topics: dict[str, bytes] = {}
    for topic, key, value, headers in messages:
        framed_topic = topics.get(topic)
        if framed_topic is None:
            framed_topic = topics[topic] = _framed(topic.encode())
        add(framed_topic)
        # framed inline, no call and no concatenation per part: this runs per output
        if key is None:
            add(_NONE)
        else:
            add(pack(len(key)))
            add(key)
        if value is None:
            add(_NONE)
        else:
            add(pack(len(value)))
            add(value)
        if headers:
            add(pack(len(headers)))
            for name, data in headers:
                add(_framed(name.encode()))
                add(_framed(data))
        else:
            add(_NO_HEADERS)
    return b"".join(out)


_NO_HEADERS = _LEN.pack(0)


def decode(blob: bytes) -> list[Message]:
    """The messages `encode` framed into `blob`."""
    view, pos, found = memoryview(blob), 0, []

    def take() -> bytes | None:
        nonlocal pos
        (n,) = _LEN.unpack_from(view, pos)
        pos += 4
        if n < 0:
            return None
        pos += n
        return bytes(view[pos - n:pos])

    while pos < len(view):
        topic, key, value = take(), take(), take()
        (count,) = _LEN.unpack_from(view, pos)
        pos += 4
        headers = tuple(((take() or b"").decode(), take() or b"") for _ in range(count))
        found.append(Message((topic or b"").decode(), key, value, headers))
    return found
