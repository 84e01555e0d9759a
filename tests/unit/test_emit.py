"""Output messages: ids are the documented uuid5, so consumers and tests can derive them,
and the envelope is the same bytes however it is put together."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_core import to_json

from stockflow.contract.emit import (
    DLQ_MAX_BYTES,
    SOURCE,
    Message,
    dlq_message,
    order_message,
    output_id,
    output_message,
    topic_of,
)
from stockflow.contract.events import Reason, Rejection
from stockflow.contract.outputs import OUTPUT_MODELS
from stockflow.contract.topics import TopicKind, Topics
from stockflow.domain.effects import Output

NAMESPACE = uuid.UUID("5e0c4f10-9b1f-4c55-a3f5-6b0a3c1d2e7f")


@given(st.text(max_size=130), st.sampled_from(["stock.changed", "reservation.accepted"]),
       st.text(max_size=40))
def test_output_id_is_uuid5_of_cause_type_and_line(cause: str, type_: str, line: str) -> None:
    expected = uuid.uuid5(NAMESPACE, f"{cause}\x1f{type_}\x1f{line}")
    assert output_id(cause, type_, line) == str(expected)


def _size(message: Message) -> int:
    headers = sum(len(n) + len(v) for n, v in message.headers)
    return len(message.key or b"") + len(message.value or b"") + headers


def test_a_dlq_message_keeps_the_input_byte_for_byte_when_it_fits() -> None:
    why = Rejection(Reason.OVERSIZED, "too big")
    msg = dlq_message(Topics(), why, "inventory.orders", 1, 7, b"K@W", b"v" * 70_000,
                      [("trace", b"t")])
    assert msg.value == b"v" * 70_000
    assert msg.headers[0] == ("trace", b"t")


@pytest.mark.parametrize(("key", "value", "headers"), [
    (b"K@W", b"v" * 2_000_000, []),
    (b"K@W", b"v" * 800_000, [(f"h{i}", b"x" * 10_000) for i in range(50)]),
    (b"k" * 3_000_000, b"v" * 10, []),
])
def test_a_dlq_message_always_fits_the_dlq(key: bytes, value: bytes,
                                           headers: list[tuple[str, bytes]]) -> None:
    why = Rejection(Reason.OVERSIZED, "too big")
    msg = dlq_message(Topics(), why, "inventory.orders", 1, 7, key, value, headers)
    assert _size(msg) <= DLQ_MAX_BYTES
    found = dict(msg.headers)
    assert found["stockflow.error.reason"] == b"oversized"
    if len(value) > DLQ_MAX_BYTES:
        assert found["stockflow.error.truncated"] == str(len(value)).encode()
        assert value.startswith(msg.value or b"")


def test_the_coordinators_messages_take_their_ids_from_the_order() -> None:
    placed = Output("order.placed", "A@W1", "1~1", {"order_id": "O1", "line_id": "1~1"})
    status = Output("order.allocated", "O1", "", {"order_id": "O1"})
    cmd = order_message(Topics(), TopicKind.ORDERS, "O1", placed, "2026-01-01T00:00:00Z")
    out = order_message(Topics(), TopicKind.ORDER_STATUS, "O1", status, "2026-01-01T00:00:00Z")
    assert (cmd.topic, cmd.key, out.topic, out.key) == (
        "inventory.orders", b"A@W1", "inventory.order-status", b"O1")
    doc, answer = json.loads(cmd.value or b""), json.loads(out.value or b"")
    assert doc["id"] == str(uuid.uuid5(NAMESPACE, "O1\x1forder.placed\x1f1~1"))
    assert answer["id"] == str(uuid.uuid5(NAMESPACE, "O1\x1forder.allocated\x1f"))
    assert doc["subject"] == "A@W1" and "subject" not in answer
    assert doc["source"] == answer["source"] == "stockflow-coordinator"
    with pytest.raises(ValueError, match="not dlq"):
        order_message(Topics(), TopicKind.DLQ, "O1", status, "2026-01-01T00:00:00Z")


_JSONABLE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8)


@given(st.sampled_from(sorted(OUTPUT_MODELS)), st.text(), st.text(), st.text(),
       st.dictionaries(st.text(), _JSONABLE, max_size=4))
def test_an_output_message_is_its_envelope_serialized_whole(
        type_: str, key: str, line: str, now: str, data: dict[str, object]) -> None:
    # output_message joins the envelope's parts itself: the bytes must be those of the
    # envelope as one dict, whatever the strings hold (quotes, control characters, ...)
    topics = Topics()
    envelope: dict[str, object] = {
        "specversion": "1.0", "id": output_id("ev-1", type_, line), "source": SOURCE,
        "type": type_, "time": now, "datacontenttype": "application/json"}
    if topic_of(type_) is not TopicKind.RESERVATIONS:
        envelope["subject"] = key
    envelope["data"] = data
    got = output_message(topics, "ev-1", Output(type_, key, line, data), now)
    assert got == Message(topics.name(topic_of(type_)), key.encode(), to_json(envelope))
