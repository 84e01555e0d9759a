"""Cost and valuation in the rules: the perpetual weighted average and the value of each
movement (hypothesis over random sequences, Decimal throughout)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.contract.events import parse
from stockflow.contract.topics import TopicKind
from stockflow.domain.effects import Outcome
from stockflow.domain.inputs import Event, ReceiptReceived
from stockflow.domain.rules import apply
from stockflow.domain.state import Policy, new_state
from stockflow.domain.valuation import PLACES, averaged
from tests.factories import envelope, event
from tests.unit.test_rules_properties import any_event

POLICY = Policy()
PRICE = st.decimals(min_value=0, max_value=Decimal("999999999999.999999"), places=6,
                    allow_nan=False, allow_infinity=False)


@st.composite
def costed_receipt(draw: st.DrawFn) -> Event:
    return event("receipt.received", receipt_id=f"c{draw(st.integers(0, 10**9))}",
                 quantity=draw(st.integers(1, 40)), unit_cost=str(draw(PRICE)),
                 currency=draw(st.sampled_from(["EUR", "EUR", "EUR", "USD"])))


@settings(max_examples=400, deadline=None)
@given(st.lists(costed_receipt() | any_event(), max_size=60))
def test_the_average_is_the_weighted_mean_of_what_was_paid(events: list[Event]) -> None:
    state = new_state("SKU-1", "WH-1", POLICY)
    paid: list[Decimal] = []  # prices of the costed receipts applied since units were held
    currency = None
    for ev in events:
        before = state
        d = apply(state, ev, POLICY)
        state = d.state
        data = ev.data
        costed = isinstance(data, ReceiptReceived) and data.unit_cost is not None
        if d.outcome is Outcome.REJECTED and d.reason == "currency_mismatch":
            assert costed and currency is not None and data.currency != currency  # type: ignore[union-attr]
            assert state == before
            continue
        if d.outcome is not Outcome.APPLIED:
            assert (state.unit_cost, state.currency) == (before.unit_cost, before.currency)
            continue
        assert d.ledger is not None
        moved = d.ledger.after.on_hand - d.ledger.before.on_hand
        if costed:
            assert isinstance(data, ReceiptReceived) and data.unit_cost is not None
            currency = currency or data.currency
            held, q, price = before.qty.on_hand, data.quantity, data.unit_cost
            if before.unit_cost is None or held <= 0:
                assert state.unit_cost == price
                paid = [price]
            else:
                # the rounding to six decimals is the only difference from the exact mean
                exact = (held * before.unit_cost + q * price) / (held + q)
                assert abs(state.unit_cost - exact) <= PLACES / 2  # type: ignore[operator]
                paid.append(price)
            assert d.ledger.value == moved * price
        else:
            assert state.unit_cost == before.unit_cost
            expected = None if state.unit_cost is None or moved == 0 else moved * state.unit_cost
            assert d.ledger.value == expected
        assert d.ledger.unit_cost == state.unit_cost
        assert state.currency == currency  # set once, by the first costed receipt
        if state.unit_cost is not None:
            assert min(paid) <= state.unit_cost <= max(paid)
            assert state.unit_cost == state.unit_cost.quantize(PLACES)


def test_worked_example() -> None:
    # 10 at 2.00, then 30 at 3.00: (20 + 90) / 40 = 2.75; 5 shipped leave at 2.75 each
    state = new_state("A", "W", POLICY)
    for ev in (event("receipt.received", "A@W", receipt_id="r1", quantity=10,
                     unit_cost="2.00", currency="EUR"),
               event("receipt.received", "A@W", receipt_id="r2", quantity=30,
                     unit_cost="3", currency="EUR")):
        state = apply(state, ev, POLICY).state
    assert (state.unit_cost, state.currency) == (Decimal("2.75"), "EUR")
    d = apply(state, event("shipment.dispatched", "A@W", shipment_id="s", quantity=5), POLICY)
    assert d.ledger is not None and d.ledger.value == Decimal("-13.75")
    # a third of a cent does not vanish: 1 at 0 joining 2 at 1 is 0.666667
    assert averaged(2, Decimal(1), 1, Decimal(0)) == Decimal("0.666667")


def _receipt(**data: Any) -> bytes:
    return envelope("receipt.received", {"receipt_id": "r", "sku": "A", "warehouse": "W",
                                         "quantity": 1, **data}, id_="e1")


@pytest.mark.parametrize(("data", "reason"), [
    ({"unit_cost": 2.5, "currency": "EUR"}, "schema_violation"),  # a JSON number
    ({"unit_cost": "-1", "currency": "EUR"}, "schema_violation"),
    ({"unit_cost": "1.1234567", "currency": "EUR"}, "schema_violation"),
    ({"unit_cost": "1e3", "currency": "EUR"}, "schema_violation"),
    ({"unit_cost": "2.5\n", "currency": "EUR"}, "schema_violation"),
    ({"unit_cost": "2.5", "currency": "eur"}, "schema_violation"),
    ({"unit_cost": "2.5"}, "schema_violation"),  # a cost needs its currency
    ({"currency": "EUR"}, "schema_violation"),
])
def test_a_malformed_cost_is_a_schema_violation(data: dict[str, Any], reason: str) -> None:
    got = parse(TopicKind.RECEIPTS, b"A@W", _receipt(**data))
    assert getattr(got, "reason", None) == reason, got


def test_a_well_formed_cost_parses_to_a_decimal() -> None:
    got = parse(TopicKind.RECEIPTS, b"A@W", _receipt(unit_cost="0.10", currency="EUR"))
    assert isinstance(got, Event) and isinstance(got.data, ReceiptReceived)
    assert got.data.unit_cost == Decimal("0.10") and got.data.currency == "EUR"
