"""Parsing at the edge: valid events become typed, everything else gets the contract's reason."""

from __future__ import annotations

import pytest

from stockflow.contract.events import Reason, Rejection, parse
from stockflow.contract.topics import TopicKind
from stockflow.domain.inputs import Event, Limits, OrderConfirmed
from tests.factories import envelope

KEY = b"SKU-1@WH-1"
PLACED = {"order_id": "O1", "line_id": "1", "sku": "SKU-1", "warehouse": "WH-1", "quantity": 2}


def reason(topic: TopicKind, key: bytes | None, value: bytes, **kw: int) -> Reason:
    got = parse(topic, key, value, Limits(**kw))
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
    assert isinstance(parse(TopicKind.ORDERS, KEY, value, Limits(max_quantity=1000)), Event)


def test_zero_delta_is_out_of_range() -> None:
    data = {"adjustment_id": "A", "sku": "SKU-1", "warehouse": "WH-1", "delta": 0, "reason": "x"}
    value = envelope("stock.adjusted", data, id_="1")
    assert reason(TopicKind.ADJUSTMENTS, KEY, value) is Reason.QUANTITY_OUT_OF_RANGE


def _deep(depth: int) -> bytes:
    head = (b'{"specversion":"1.0","id":"e","source":"s","type":"receipt.received",'
            b'"time":"2026-01-01T00:00:00Z","data":')
    return head + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [150, 5_000, 30_000])
def test_deep_nesting_is_rejected_not_raised(depth: int) -> None:
    got = reason(TopicKind.RECEIPTS, KEY, _deep(depth), max_bytes=1_000_000)
    assert got in {Reason.INVALID_JSON, Reason.INVALID_ENVELOPE}


@pytest.mark.parametrize(("field", "value", "want"), [
    # the envelope's time: its arithmetic with the TTL must stay inside the calendar
    ("time", "9999-12-31T23:59:00Z", Reason.INVALID_ENVELOPE),
    ("time", "0001-01-01T00:30:00+01:00", Reason.INVALID_ENVELOPE),
    ("time", "1969-12-31T23:59:59Z", Reason.INVALID_ENVELOPE),
    # year 10000 and year 0 once converted to UTC: Postgres stores them, Python cannot read
    ("expires_at", "9999-12-31T23:00:00-05:00", Reason.SCHEMA_VIOLATION),
    ("expires_at", "0001-01-01T00:30:00+01:00", Reason.SCHEMA_VIOLATION),
    ("expires_at", "9000-01-01T00:00:00Z", Reason.SCHEMA_VIOLATION),
])
def test_timestamps_outside_the_window_are_rejected(field: str, value: str,
                                                     want: Reason) -> None:
    doc = (envelope("order.placed", PLACED, id_="1", time=value) if field == "time" else
           envelope("order.placed", {**PLACED, "expires_at": value}, id_="1"))
    assert reason(TopicKind.ORDERS, KEY, doc) is want


def test_timestamps_at_the_window_edges_are_accepted() -> None:
    data = {**PLACED, "expires_at": "8999-12-31T23:59:59.999999Z"}
    got = parse(TopicKind.ORDERS, KEY, envelope("order.placed", data, id_="1"))
    assert isinstance(got, Event)


@pytest.mark.parametrize(("data", "want"), [
    ({**PLACED, "line_count": 2**31}, Reason.SCHEMA_VIOLATION),  # the column is an int4
    ({**PLACED, "line_count": 100_001}, Reason.SCHEMA_VIOLATION),
    ({**PLACED, "quantity": 10**400}, Reason.QUANTITY_OUT_OF_RANGE),
    ({**PLACED, "quantity": 1.5}, Reason.SCHEMA_VIOLATION),
])
def test_integers_are_bounded_by_what_their_columns_hold(data: dict[str, object],
                                                          want: Reason) -> None:
    assert reason(TopicKind.ORDERS, KEY, envelope("order.placed", data, id_="1")) is want


def test_levels_have_their_own_bound() -> None:
    def counted(on_hand: int) -> bytes:
        return envelope("stock.counted", {"count_id": "C", "sku": "SKU-1", "warehouse": "WH-1",
                                          "on_hand": on_hand}, id_="1")

    # a truthful count above the largest quantity is a level, and is accepted
    assert isinstance(parse(TopicKind.ADJUSTMENTS, KEY, counted(1_500_000)), Event)
    assert reason(TopicKind.ADJUSTMENTS, KEY, counted(1_000_000_001)) is Reason.SCHEMA_VIOLATION
    assert reason(TopicKind.ADJUSTMENTS, KEY, counted(-1)) is Reason.SCHEMA_VIOLATION
    assert reason(TopicKind.ADJUSTMENTS, KEY, counted(50), max_level=10) is Reason.SCHEMA_VIOLATION


def test_a_lone_surrogate_is_invalid_json() -> None:
    doc = envelope("order.placed", {**PLACED, "order_id": "X"}, id_="1").replace(b'"X"',
                                                                              b'"\\ud800"')
    assert reason(TopicKind.ORDERS, KEY, doc) is Reason.INVALID_JSON


def test_nul_deep_inside_unknown_data_is_found_without_recursion() -> None:
    data = {**PLACED, "extra": "N"}
    doc = envelope("order.placed", data, id_="1").replace(
        b'"N"', b"[" * 150 + b'"\\u0000"' + b"]" * 150)
    assert reason(TopicKind.ORDERS, KEY, doc) is Reason.SCHEMA_VIOLATION
