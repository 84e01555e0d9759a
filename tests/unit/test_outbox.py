"""The outbox framing gives back exactly the messages it was given."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from stockflow.adapters.outbox import decode, encode
from stockflow.contract.emit import Message

BLOBS = st.none() | st.binary(max_size=50)
HEADERS = st.lists(st.tuples(st.text(max_size=10), st.binary(max_size=10)), max_size=3)
MESSAGES = st.lists(st.builds(Message, st.sampled_from(["a", "b.ü"]), BLOBS, BLOBS,
                              HEADERS.map(tuple)), max_size=20)


@given(MESSAGES)
def test_encode_then_decode_is_identity(messages: list[Message]) -> None:
    assert decode(encode(messages)) == messages


def _framed(blob: bytes | None) -> bytes:
    return struct.pack(">i", -1) if blob is None else struct.pack(">i", len(blob)) + blob


@given(MESSAGES)
def test_the_framing_is_the_one_outbox_rows_were_written_in(messages: list[Message]) -> None:
    # rows written by an earlier processor are read by the next: the bytes never change
    spelled_out = b"".join(
        _framed(m.topic.encode()) + _framed(m.key) + _framed(m.value)
        + struct.pack(">i", len(m.headers))
        + b"".join(_framed(name.encode()) + _framed(data) for name, data in m.headers)
        for m in messages)
    assert encode(messages) == spelled_out
