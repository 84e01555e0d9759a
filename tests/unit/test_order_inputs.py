"""The order coordinator's edge: order requests and the reservation events it reads back
become typed `OrderInput`s, everything else a contract reason (parse_order_input)."""

from __future__ import annotations

from typing import Any

import pytest

from stockflow.contract.events import Reason, Rejection, parse, parse_order_input
from stockflow.contract.topics import COORDINATOR_INPUTS, INPUTS, TopicKind, Topics
from stockflow.domain.inputs import Limits
from stockflow.domain.order_inputs import (
    Accepted,
    Expired,
    OrderInput,
    OrderRequested,
    fingerprint,
)
from tests.factories import envelope

REQUESTS, RESERVATIONS = TopicKind.ORDER_REQUESTS, TopicKind.RESERVATIONS
LINE = {"line_id": "1", "sku": "SKU-1", "quantity": 2}
ORDER = {"order_id": "O1", "lines": [LINE]}
REPORT = {"order_id": "O1", "line_id": "1~1", "sku": "SKU-1", "warehouse": "WH-1",
          "quantity": 2, "cause": {"event_id": "e", "type": "order.placed"}}


def requested(**changes: Any) -> bytes:
    return envelope("order.requested", {**ORDER, **changes}, id_="r1")


def rejected(topic: TopicKind, value: bytes, key: bytes | None = b"O1",
             **limits: int) -> Rejection:
    got = parse_order_input(topic, key, value, Limits(**limits))
    assert isinstance(got, Rejection), got
    assert got.message
    return got


def test_an_order_request_is_typed_with_defaults_and_unknown_fields_ignored() -> None:
    got = parse_order_input(REQUESTS, b"O1", requested(gift_wrap=True))
    assert isinstance(got, OrderInput)
    assert isinstance(got.data, OrderRequested)
    assert (got.order_id, got.type, got.data.strategy) == ("O1", "order.requested", "priority")
    assert got.data.lines[0].warehouse is None


@pytest.mark.parametrize(("type_", "data"), [
    ("order.confirm-requested", {"order_id": "O1"}),
    ("order.cancel-requested", {"order_id": "O1", "reason": "changed my mind"}),
    ("order.expired", {"order_id": "O1"}),
])
def test_the_other_requests_are_typed(type_: str, data: dict[str, Any]) -> None:
    got = parse_order_input(REQUESTS, b"O1", envelope(type_, data, id_="1"))
    assert isinstance(got, OrderInput) and got.type == type_


def test_reservation_events_are_typed_by_their_kind() -> None:
    accepted = parse_order_input(RESERVATIONS, b"O1", envelope("reservation.accepted", REPORT,
                                                               id_="1"))
    expired = parse_order_input(RESERVATIONS, b"O1", envelope("reservation.expired", REPORT,
                                                              id_="2"))
    assert isinstance(accepted, OrderInput) and isinstance(accepted.data, Accepted)
    assert isinstance(expired, OrderInput) and isinstance(expired.data, Expired)


@pytest.mark.parametrize(("value", "reason", "says"), [
    (requested(lines=[]), Reason.SCHEMA_VIOLATION, "1 to 100 lines, not 0"),
    (requested(lines=[{**LINE, "line_id": str(i)} for i in range(101)]),
     Reason.SCHEMA_VIOLATION, "1 to 100 lines, not 101"),
    (requested(lines=[LINE, {**LINE, "sku": "SKU-2"}]), Reason.SCHEMA_VIOLATION,
     "line_id '1' is used twice"),
    (requested(lines=[{**LINE, "line_id": "1~2"}]), Reason.SCHEMA_VIOLATION, "holds no '~'"),
    (requested(lines=[{**LINE, "line_id": "x" * 121}]), Reason.SCHEMA_VIOLATION, "120"),
    (requested(strategy="cheapest"), Reason.SCHEMA_VIOLATION, "'fewest_shipments'"),
    (requested(strategy="nearest"), Reason.SCHEMA_VIOLATION, "nearest strategy needs ship_to"),
    (requested(ship_to={"lat": 91, "lon": 0}), Reason.SCHEMA_VIOLATION, "ship_to.lat"),
    (requested(ship_to={"lat": "1", "lon": 0}), Reason.SCHEMA_VIOLATION, "ship_to.lat"),
    (requested(expires_at=1_800_000_000), Reason.SCHEMA_VIOLATION, "not a number"),
    (requested(lines=[{**LINE, "quantity": 0}]), Reason.QUANTITY_OUT_OF_RANGE, "quantity"),
    (requested(lines=[{**LINE, "warehouse": "W@1"}]), Reason.SCHEMA_VIOLATION, "warehouse"),
    (envelope("order.requested", {"order_id": "O1"}, id_="1"), Reason.SCHEMA_VIOLATION, "lines"),
    (envelope("order.exploded", ORDER, id_="1"), Reason.UNKNOWN_TYPE, "order.exploded"),
    (envelope("order.placed", ORDER, id_="1"), Reason.WRONG_TOPIC, "belongs on orders"),
    (envelope("reservation.accepted", REPORT, id_="1"), Reason.WRONG_TOPIC,
     "belongs on reservations"),
    (requested(pad="x" * 70_000), Reason.OVERSIZED, "bytes"),
    (b"{nope", Reason.INVALID_JSON, "not JSON"),
    (requested(order_id="O\x00"), Reason.SCHEMA_VIOLATION, "NUL"),
])
def test_contract_breaking_requests_name_their_problem(value: bytes, reason: Reason,
                                                        says: str) -> None:
    key = b"O\x00" if b'O\\u0000' in value else b"O1"
    got = rejected(REQUESTS, value, key)
    assert got.reason is reason
    assert says in got.message


def test_the_quantity_limit_is_configurable() -> None:
    value = requested(lines=[{**LINE, "quantity": 500}])
    assert rejected(REQUESTS, value, max_quantity=100).reason is Reason.QUANTITY_OUT_OF_RANGE
    assert isinstance(parse_order_input(REQUESTS, b"O1", value, Limits(max_quantity=500)),
                      OrderInput)


@pytest.mark.parametrize(("topic", "value"), [
    (REQUESTS, requested()),
    (REQUESTS, envelope("order.cancel-requested", {"order_id": "O1"}, id_="1")),
    (RESERVATIONS, envelope("reservation.released", REPORT, id_="1")),
])
@pytest.mark.parametrize("key", [b"O2", None, b"SKU-1@WH-1"])
def test_the_kafka_key_must_be_the_order_id(topic: TopicKind, value: bytes,
                                             key: bytes | None) -> None:
    assert rejected(topic, value, key).reason is Reason.KEY_MISMATCH


def test_a_subject_other_than_the_order_id_is_a_key_mismatch() -> None:
    value = envelope("order.requested", ORDER, id_="1", subject="O2")
    assert rejected(REQUESTS, value).reason is Reason.KEY_MISMATCH


def test_order_requests_on_a_stock_topic_are_misrouted_not_unknown() -> None:
    got = parse(TopicKind.ORDERS, b"SKU-1@WH-1", requested())
    assert isinstance(got, Rejection)
    assert got.reason is Reason.WRONG_TOPIC


def test_only_the_coordinators_topics_are_parsed_for_it() -> None:
    with pytest.raises(ValueError, match="not a topic of the order coordinator"):
        parse_order_input(TopicKind.ORDERS, b"O1", requested())


def test_topics_keep_the_stock_inputs_and_create_the_coordinators_too() -> None:
    assert INPUTS == (TopicKind.ORDERS, TopicKind.SHIPMENTS, TopicKind.RECEIPTS,
                      TopicKind.ADJUSTMENTS)
    assert COORDINATOR_INPUTS == (REQUESTS, RESERVATIONS)
    names = Topics().all
    assert len(names) == len(set(names))
    assert {"inventory.order-requests", "inventory.order-status"} <= set(names)


def _request(value: bytes) -> OrderRequested:
    got = parse_order_input(REQUESTS, b"O1", value)
    assert isinstance(got, OrderInput) and isinstance(got.data, OrderRequested)
    return got.data


def test_the_fingerprint_is_what_the_model_reads_not_how_it_was_written() -> None:
    plain = _request(requested(expires_at="2026-01-01T10:00:00Z"))
    spelled = _request(envelope("order.requested", {
        "lines": [{"quantity": 2, "sku": "SKU-1", "line_id": "1", "note": "x"}],
        "strategy": "priority", "order_id": "O1", "expires_at": "2026-01-01T11:00:00+01:00"},
        id_="other"))
    assert fingerprint(plain) == fingerprint(spelled)
    assert fingerprint(plain) != fingerprint(_request(requested(
        expires_at="2026-01-01T10:00:01Z")))
    assert fingerprint(plain) != fingerprint(_request(requested(
        lines=[{**LINE, "quantity": 3}], expires_at="2026-01-01T10:00:00Z")))
