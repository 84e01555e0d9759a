"""The contract's stock rules, one behaviour at a time."""

from __future__ import annotations

from typing import Any

import pytest

from stockflow.domain.effects import Decision, Outcome
from stockflow.domain.rules import apply
from stockflow.domain.state import Policy, Status, StockState, new_state
from tests.factories import T0, event, minutes

POLICY = Policy()


def run(*events: object, state: StockState | None = None) -> tuple[StockState, list[Decision]]:
    st = state or new_state("SKU-1", "WH-1", POLICY)
    out = []
    for ev in events:
        d = apply(st, ev, POLICY)  # type: ignore[arg-type]
        out.append(d)
        st = d.state
    return st, out


def types(d: Decision) -> list[str]:
    return [o.type for o in d.outputs]


def stocked(n: int) -> StockState:
    st, _ = run(event("receipt.received", receipt_id="R0", quantity=n))
    return st


def test_receipt_raises_on_hand_and_a_new_key_goes_low() -> None:
    st, [d] = run(event("receipt.received", receipt_id="R1", quantity=5))
    assert (st.qty.on_hand, st.version, st.severity) == (5, 1, "low")
    assert types(d) == ["stock.changed", "low-stock.raised"]
    assert d.ledger is not None and d.ledger.after.on_hand == 5


def test_order_placed_reserves_when_sellable_and_rejects_otherwise() -> None:
    st, [ok, no] = run(
        event("order.placed", order_id="O1", line_id="1", quantity=30),
        event("order.placed", order_id="O2", line_id="1", quantity=80),
        state=stocked(100),
    )
    assert st.qty.reserved == 30
    assert types(ok) == ["stock.changed", "reservation.accepted"]
    assert types(no) == ["reservation.rejected", "oversell.detected"]
    oversell = no.outputs[1].data
    assert (oversell["kind"], oversell["available_before"], oversell["shortfall"]) == (
        "reservation_rejected", 70, 10)
    assert st.lines[("O2", "1")].status is Status.REJECTED
    assert no.outcome is Outcome.APPLIED  # the rejected line is remembered
    # the ledger keeps the demand turned away apart from what moved
    assert no.ledger is not None and ok.ledger is not None
    assert (no.ledger.lost, ok.ledger.lost) == (80, None)


def test_safety_stock_limits_sellable_and_backorder_overrides() -> None:
    st, [_, d] = run(
        event("stock.thresholds-set", reorder_point=5, safety_stock=8),
        event("order.placed", order_id="O1", line_id="1", quantity=5, allow_backorder=True),
        state=stocked(10),
    )
    assert st.qty.reserved == 5
    [over] = [o.data for o in d.outputs if o.type == "oversell.detected"]
    assert (over["kind"], over["available_before"], over["shortfall"]) == ("backordered", 2, 3)
    assert d.outputs[1].data["backordered"] is True


@pytest.mark.parametrize(("type_", "ids", "stock", "figure", "after"), [
    # the same line placed twice
    ("order.placed", {"order_id": "O1", "line_id": "1", "quantity": 3}, 50, "reserved", 3),
    # the same reference under a new event id
    ("shipment.dispatched", {"shipment_id": "S1", "line_id": "1", "quantity": 2}, 10,
     "on_hand", 8),
])
def test_a_repeated_line_or_reference_is_a_noop(type_: str, ids: dict[str, Any], stock: int,
                                                figure: str, after: int) -> None:
    st, [_, d] = run(event(type_, **ids), event(type_, **ids), state=stocked(stock))
    assert d.outcome is Outcome.NOOP and getattr(st.qty, figure) == after


def test_confirm_cancel_and_expiry() -> None:
    placed = [event("order.placed", order_id="O1", line_id=str(i), quantity=2) for i in (1, 2)]
    st, ds = run(*placed,
                 event("order.confirmed", order_id="O1", line_id="1"),
                 event("reservation.expired", order_id="O1", line_id="1", at=T0 + minutes(20)),
                 event("reservation.expired", order_id="O1", line_id="2", at=T0 + minutes(5)),
                 event("reservation.expired", order_id="O1", line_id="2", at=T0 + minutes(16)),
                 state=stocked(50))
    assert [d.outcome for d in ds[2:]] == [Outcome.APPLIED, Outcome.NOOP, Outcome.NOOP,
                                           Outcome.APPLIED]
    assert st.lines[("O1", "1")].status is Status.CONFIRMED  # confirmed never expires
    assert st.lines[("O1", "2")].status is Status.EXPIRED
    assert st.qty.reserved == 2
    st, [d] = run(event("order.cancelled", order_id="O1", reason="customer"), state=st)
    assert st.qty.reserved == 0 and types(d) == ["stock.changed", "reservation.released"]


def test_cancel_before_place_makes_the_place_a_noop() -> None:
    st, [_, d] = run(event("order.cancelled", order_id="O9", line_id="1"),
                     event("order.placed", order_id="O9", line_id="1", quantity=4),
                     state=stocked(50))
    assert d.outcome is Outcome.NOOP and st.qty.reserved == 0


def _line(st: StockState, order: str = "O1", line: str = "1") -> tuple[str, int, int, int]:
    r = st.lines[(order, line)]
    return (r.status.value, r.quantity, r.remaining, r.shipped)


def test_a_partial_shipment_before_its_placement_leaves_the_same_reservation() -> None:
    place = event("order.placed", order_id="O1", line_id="1", quantity=3)
    ship = event("shipment.dispatched", shipment_id="S1", order_id="O1", line_id="1",
                 quantity=2)
    first, _ = run(place, ship, state=stocked(10))
    late, [_, d] = run(ship, place, state=stocked(10))
    for st in (first, late):
        assert (st.qty.on_hand, st.qty.reserved) == (8, 1)
        assert _line(st) == ("pending", 3, 1, 2)
    assert types(d) == ["stock.changed", "reservation.accepted"]
    # the placement is judged on the sellable it would have seen before the shipment
    tight = stocked(3)
    st, [_, d] = run(ship, place, state=tight)
    assert d.outputs[1].type == "reservation.accepted" and st.qty.reserved == 1


def test_an_over_shipment_fulfils_the_line_in_either_order() -> None:
    place = event("order.placed", order_id="O1", line_id="1", quantity=3)
    ships = [event("shipment.dispatched", shipment_id=f"S{i}", order_id="O1", line_id="1",
                   quantity=q) for i, q in ((1, 2), (2, 4))]
    first, ds = run(place, *ships, state=stocked(10))
    late, [_, _, d] = run(*ships, place, state=stocked(10))
    for st in (first, late):
        assert (st.qty.on_hand, st.qty.reserved) == (4, 0)
        assert _line(st) == ("fulfilled", 3, 0, 6)
    assert types(ds[2]) == ["stock.changed", "reservation.fulfilled"]
    assert types(d) == ["reservation.accepted", "reservation.fulfilled"]


def test_a_cancelled_line_shipped_in_full_is_fulfilled_in_either_order() -> None:
    place = event("order.placed", order_id="O1", line_id="1", quantity=3)
    cancel = event("order.cancelled", order_id="O1", line_id="1")
    ship = event("shipment.dispatched", shipment_id="S1", order_id="O1", line_id="1",
                 quantity=3)
    for order in ((place, cancel, ship), (place, ship, cancel), (ship, place, cancel)):
        st, ds = run(*order, state=stocked(10))
        assert (st.qty.on_hand, st.qty.reserved) == (7, 0)
        assert _line(st) == ("fulfilled", 3, 0, 3)
    assert "reservation.fulfilled" in types(ds[1])  # at the placement, already shipped
    st, ds = run(place, cancel, ship, state=stocked(10))
    assert types(ds[2]) == ["stock.changed", "reservation.fulfilled"]
    # short of the line, the cancel wins whatever the order
    part = ship._replace(data=ship.data.model_copy(update={"quantity": 2}))
    for order in ((place, cancel, part), (part, place, cancel)):
        st, _ = run(*order, state=stocked(10))
        assert _line(st) == ("released", 3, 0, 2) and st.qty.reserved == 0


def test_a_cancel_before_the_placement_wins_over_an_earlier_shipment() -> None:
    cancel = event("order.cancelled", order_id="O1", line_id="1")
    place = event("order.placed", order_id="O1", line_id="1", quantity=3)
    ship = event("shipment.dispatched", shipment_id="S1", order_id="O1", line_id="1",
                 quantity=3)
    for order in ((cancel, place, ship), (ship, cancel, place), (cancel, ship, place)):
        st, _ = run(*order, state=stocked(10))
        assert (st.qty.on_hand, st.qty.reserved) == (7, 0)
        assert _line(st) == ("released", 0, 0, 3)


def test_shipment_consumes_lines_in_line_order_and_oversells_past_on_hand() -> None:
    st, ds = run(event("order.placed", order_id="O1", line_id="b", quantity=3),
                 event("order.placed", order_id="O1", line_id="a", quantity=2,
                       allow_backorder=True),
                 event("shipment.dispatched", shipment_id="S1", order_id="O1", quantity=4),
                 state=stocked(3))
    assert st.lines[("O1", "a")].status is Status.FULFILLED
    assert st.lines[("O1", "b")].remaining == 1
    assert (st.qty.on_hand, st.qty.reserved) == (-1, 1)
    [over] = [o.data for o in ds[-1].outputs if o.type == "oversell.detected"]
    assert (over["kind"], over["requested"], over["available_before"], over["shortfall"]) == (
        "shipment_exceeds_on_hand", 4, 3, 1)


def test_transfer_phases_and_forwarding() -> None:
    _, [d] = run(event("transfer.dispatched", transfer_id="T1", to_warehouse="WH-2", quantity=4),
                 state=stocked(10))
    forwarded = [o for o in d.outputs if o.type == "transfer.incoming"]
    assert forwarded and forwarded[0].key == "SKU-1@WH-2"
    dest = new_state("SKU-1", "WH-2", POLICY)
    inc = event("transfer.incoming", "SKU-1@WH-2", transfer_id="T1", from_warehouse="WH-1",
                quantity=4)
    rec = event("transfer.received", "SKU-1@WH-2", transfer_id="T1", quantity=4)
    a, _ = run(inc, rec, state=dest)
    b, [_, late] = run(rec, inc, state=dest)
    assert (a.qty.on_hand, a.qty.in_transit) == (b.qty.on_hand, b.qty.in_transit) == (4, 0)
    assert late.outcome is Outcome.NOOP


def test_adjustments_counts_damage_and_negative_results() -> None:
    st, ds = run(event("stock.adjusted", adjustment_id="A1", delta=-20, reason="loss"),
                 event("stock.damaged", damage_id="D1", quantity=11),
                 event("stock.damaged", damage_id="D2", quantity=3),
                 event("stock.counted", count_id="C1", on_hand=42),
                 event("return.received", return_id="X1", quantity=2, condition="damaged"),
                 state=stocked(10))
    assert [d.outcome for d in ds] == [Outcome.REJECTED, Outcome.REJECTED, Outcome.APPLIED,
                                       Outcome.APPLIED, Outcome.APPLIED]
    assert (st.qty.on_hand, st.qty.damaged) == (42, 5)
    count = ds[3].ledger
    assert count is not None and count.note == "cycle_count"
    assert count.after.on_hand - count.before.on_hand == 35


def test_low_stock_transitions() -> None:
    st, ds = run(event("receipt.received", receipt_id="R1", quantity=15),
                 event("shipment.dispatched", shipment_id="S1", quantity=6),
                 event("shipment.dispatched", shipment_id="S2", quantity=9),
                 event("receipt.received", receipt_id="R2", quantity=3),
                 event("stock.thresholds-set", reorder_point=2, safety_stock=0))
    assert [t for d in ds for t in types(d) if t.startswith("low-stock")] == [
        "low-stock.raised", "low-stock.changed", "low-stock.changed", "low-stock.resolved"]
    assert st.severity == "ok"
