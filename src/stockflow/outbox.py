"""Outgoing Kafka messages, and their framing into one outbox blob per batch and partition."""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = ["Message", "decode", "encode"]

_LEN = struct.Struct(">i")


class Message(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def _put(out: list[bytes], blob: bytes | None) -> None:
    if blob is None:
        out.append(_LEN.pack(-1))
    else:
        out.append(_LEN.pack(len(blob)))
        out.append(blob)


def encode(messages: list[Message]) -> bytes:
    out: list[bytes] = []
    for m in messages:
        _put(out, m.topic.encode())
        _put(out, m.key)
        _put(out, m.value)
        out.append(_LEN.pack(len(m.headers)))
        for name, value in m.headers:
            _put(out, name.encode())
            _put(out, value)
    return b"".join(out)


def decode(blob: bytes) -> list[Message]:
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
