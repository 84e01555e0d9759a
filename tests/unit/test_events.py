"""Parsing at the edge: valid events become typed, everything else gets the contract's reason."""

from __future__ import annotations

import pytest

from stockflow.events import Event, OrderConfirmed, Reason, Rejection, TopicKind, parse
from tests.factories import envelope

KEY = b"SKU-1@WH-1"
PLACED = {"order_id": "O1", "line_id": "1", "sku": "SKU-1", "warehouse": "WH-1", "quantity": 2}


def reason(topic: TopicKind, key: bytes | None, value: bytes, **kw: int) -> Reason:
    got = parse(topic, key, value, **kw)
    assert isinstance(got, Rejection), got
    assert got.message
    return got.reason


def test_valid_event_is_typed_and_unknown_data_fields_are_ignored() -> None:
    got = parse(TopicKind.ORDERS, KEY, envelope("order.placed", {**PLACED, "gift": True}, id_="1"))
    assert isinstance(got, Event)
    assert (got.key, got.type, got.id) == ("SKU-1@WH-1", "order.placed", "1")


def test_data_without_key_parts_takes_them_from_the_kafka_key() -> None:
    got = parse(TopicKind.ORDERS, KEY, envelope("order.confirmed", {"order_id": "O1"}, id_="1"))
    assert isinstance(got, Event) and isinstance(got.data, OrderConfirmed)
    assert got.key == "SKU-1@WH-1"


@pytest.mark.parametrize(("value", "want"), [
    (b"{nope", Reason.INVALID_JSON),
    (b'{"specversion": "1.0"}', Reason.INVALID_ENVELOPE),
    (envelope("order.exploded", PLACED, id_="1"), Reason.UNKNOWN_TYPE),
    (envelope("receipt.received", {**PLACED, "receipt_id": "R"}, id_="1"), Reason.WRONG_TOPIC),
    (envelope("order.placed", {**PLACED, "quantity": "2"}, id_="1"), Reason.SCHEMA_VIOLATION),
    (envelope("order.placed", {**PLACED, "quantity": 0}, id_="1"), Reason.QUANTITY_OUT_OF_RANGE),
    (envelope("order.placed", {**PLACED, "quantity": 1_000_001}, id_="1"),
     Reason.QUANTITY_OUT_OF_RANGE),
    (envelope("order.placed", {**PLACED, "warehouse": "WH-2"}, id_="1"), Reason.KEY_MISMATCH),
    (envelope("order.placed", PLACED, id_="1", subject="X@Y"), Reason.KEY_MISMATCH),
    (envelope("order.placed", {**PLACED, "pad": "x" * 70_000}, id_="1"), Reason.OVERSIZED),
])
def test_rejections_carry_the_contract_reason(value: bytes, want: Reason) -> None:
    assert reason(TopicKind.ORDERS, KEY, value) is want


@pytest.mark.parametrize(("id_", "data", "want"), [
    ("a\x00b", PLACED, Reason.INVALID_ENVELOPE),
    ("1", {**PLACED, "order_id": "O\x00"}, Reason.SCHEMA_VIOLATION),
    ("1", {**PLACED, "gift_note": "\x00"}, Reason.SCHEMA_VIOLATION),
])
def test_nul_in_a_string_is_rejected(id_: str, data: dict[str, object], want: Reason) -> None:
    # Postgres text cannot hold NUL: accepted, it would fail every retry of the batch.
    assert reason(TopicKind.ORDERS, KEY, envelope("order.placed", data, id_=id_)) is want


def test_an_escaped_backslash_before_u0000_is_not_nul() -> None:
    value = envelope("order.placed", {**PLACED, "order_id": "O\\u0000"}, id_="1")
    got = parse(TopicKind.ORDERS, KEY, value)
    assert isinstance(got, Event)
    assert got.data.order_id == "O\\u0000"  # type: ignore[union-attr]


def test_missing_or_malformed_kafka_key_is_a_key_mismatch() -> None:
    value = envelope("order.placed", PLACED, id_="1")
    assert reason(TopicKind.ORDERS, None, value) is Reason.KEY_MISMATCH
    assert reason(TopicKind.ORDERS, b"SKU-1", value) is Reason.KEY_MISMATCH


def test_quantity_limit_is_configurable() -> None:
    value = envelope("order.placed", {**PLACED, "quantity": 500}, id_="1")
    assert reason(TopicKind.ORDERS, KEY, value, max_quantity=100) is Reason.QUANTITY_OUT_OF_RANGE
    assert isinstance(parse(TopicKind.ORDERS, KEY, value, max_quantity=1000), Event)


def test_zero_delta_is_out_of_range() -> None:
    data = {"adjustment_id": "A", "sku": "SKU-1", "warehouse": "WH-1", "delta": 0, "reason": "x"}
    value = envelope("stock.adjusted", data, id_="1")
    assert reason(TopicKind.ADJUSTMENTS, KEY, value) is Reason.QUANTITY_OUT_OF_RANGE
