"""The outbox framing gives back exactly the messages it was given."""

from __future__ import annotations

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
