"""Oversell remediation in the stock rules, one behaviour at a time (the properties are in
test_remediation_properties)."""

from __future__ import annotations

from typing import Any

import pytest

from stockflow.adapters.settings import Settings
from stockflow.domain.effects import Decision
from stockflow.domain.inputs import Event
from stockflow.domain.rules import apply, may_lower_on_hand
from stockflow.domain.state import Policy, Remediation, Status, StockState, new_state
from tests.factories import event

ON = Policy(oversell_remediation=Remediation.RELEASE_NEWEST_PENDING)
OFF = Policy()


def run(stock: int, events: list[Event],
        policy: Policy = ON) -> tuple[StockState, list[Decision]]:
    """`events` at a key that received `stock` units first (not among the decisions)."""
    st = apply(new_state("SKU-1", "WH-1", policy),
               event("receipt.received", receipt_id="R0", quantity=stock), policy).state
    out = []
    for ev in events:
        d = apply(st, ev, policy)
        out.append(d)
        st = d.state
    return st, out


def place(order: str, quantity: int, line: str = "1", **extra: Any) -> Event:
    return event("order.placed", order_id=order, line_id=line, quantity=quantity, **extra)


def released(d: Decision) -> list[tuple[str, int, object]]:
    return [(o.data["order_id"], o.data["quantity"], o.data.get("reason"))
            for o in d.outputs if o.type == "reservation.released"]


def test_a_count_below_the_reservations_releases_the_newest_pending_whole() -> None:
    st, ds = run(20, [place("OLD", 5), place("CONF", 4), place("MID", 3),
                                place("NEW", 6), event("order.confirmed", order_id="CONF"),
                                event("stock.counted", count_id="C1", on_hand=10)])
    count = ds[-1]
    # reserved 18 against 10 counted: NEW (6) leaves available at -2, so MID (3) goes too,
    # whole, bringing it to 1; OLD is not needed and CONF, confirmed, is never released
    assert released(count) == [("NEW", 6, "oversell_remediation"),
                               ("MID", 3, "oversell_remediation")]
    assert (st.qty.on_hand, st.qty.reserved) == (10, 9)
    assert {o: st.lines[(o, "1")].status for o in ("OLD", "CONF", "MID", "NEW")} == {
        "OLD": Status.PENDING, "CONF": Status.CONFIRMED, "MID": Status.RELEASED,
        "NEW": Status.RELEASED}
    # one decision: one version, one ledger entry that says how much remediation released
    assert count.ledger is not None
    assert (count.ledger.before.reserved, count.ledger.after.reserved) == (18, 9)
    assert count.ledger.remediated == 9 and count.ledger.note == "cycle_count"
    assert st.version == ds[-2].state.version + 1
    types = [o.type for o in count.outputs]
    assert types[0] == "stock.changed" and count.outputs[0].data["reserved"] == 9
    assert types.count("reservation.released") == 2


def test_it_stops_as_soon_as_available_is_back_to_zero() -> None:
    st, ds = run(10, [place("A", 4), place("B", 3), place("C", 2),
                                event("stock.counted", count_id="C1", on_hand=6)])
    assert released(ds[-1]) == [("C", 2, "oversell_remediation"),
                                ("B", 3, "oversell_remediation")]
    assert (st.qty.available, st.lines[("A", "1")].status) == (2, Status.PENDING)


def test_backordered_and_confirmed_lines_are_never_released() -> None:
    st, ds = run(5, [place("CONF", 3), event("order.confirmed", order_id="CONF"),
                               place("BO", 6, allow_backorder=True),
                               event("stock.damaged", damage_id="D1", quantity=5)])
    assert released(ds[-1]) == []
    assert (st.qty.on_hand, st.qty.reserved) == (0, 9)


def test_the_floor_is_the_available_before_when_that_was_already_negative() -> None:
    # available -3 after a backorder; a shipment lowering it to -5 releases back to -3 or above
    st, ds = run(10, [place("A", 2), place("BO", 11, allow_backorder=True),
                                event("shipment.dispatched", shipment_id="S1", quantity=2)])
    assert released(ds[-1]) == [("A", 2, "oversell_remediation")]
    assert st.qty.available == -3


@pytest.mark.parametrize("movement", [
    event("shipment.dispatched", shipment_id="S1", quantity=4),
    event("transfer.dispatched", transfer_id="T1", to_warehouse="WH-2", quantity=4),
    event("stock.adjusted", adjustment_id="A1", delta=-4, reason="shrink"),
    event("stock.counted", count_id="C1", on_hand=6),
    event("stock.damaged", damage_id="D1", quantity=4),
], ids=lambda e: e.type)
def test_every_movement_that_lowers_on_hand_remediates(movement: Event) -> None:
    assert may_lower_on_hand(movement)
    st, ds = run(10, [place("A", 6), place("B", 4), movement])
    assert released(ds[-1]) == [("B", 4, "oversell_remediation")]
    assert st.qty.available == 0


def test_placements_and_movements_that_do_not_lower_available_release_nothing() -> None:
    st, ds = run(10, [place("A", 10), place("BO", 5, allow_backorder=True),
                                # shipped against its own reservation: available unchanged
                                event("shipment.dispatched", shipment_id="S1", order_id="A",
                                      line_id="1", quantity=10),
                                event("stock.counted", count_id="C1", on_hand=0)])
    assert [released(d) for d in ds] == [[]] * len(ds)
    assert st.qty.available == -5
    assert not may_lower_on_hand(event("receipt.received", receipt_id="R", quantity=1))
    assert not may_lower_on_hand(event("stock.adjusted", adjustment_id="A", delta=3,
                                       reason="found"))


def test_a_shipment_of_one_order_can_release_another_orders_line() -> None:
    # 10 shipped for A's line of 6: 4 more than reserved, taken from B, the newest pending
    st, ds = run(12, [place("A", 6), place("B", 5), place("C", 1),
                                event("shipment.dispatched", shipment_id="S1", order_id="A",
                                      line_id="1", quantity=10)])
    assert [o.type for o in ds[-1].outputs if o.type.startswith("reservation.")] == [
        "reservation.fulfilled", "reservation.released", "reservation.released"]
    assert released(ds[-1]) == [("C", 1, "oversell_remediation"),
                                ("B", 5, "oversell_remediation")]
    assert (st.qty.on_hand, st.qty.reserved) == (2, 0)


def test_with_the_policy_none_nothing_is_released() -> None:
    st, ds = run(10, [place("A", 6), place("B", 4),
                                event("stock.counted", count_id="C1", on_hand=0)], policy=OFF)
    assert released(ds[-1]) == []
    assert ds[-1].ledger is not None and ds[-1].ledger.remediated is None
    assert (st.qty.available, st.lines[("B", "1")].status) == (-10, Status.PENDING)


def test_the_setting_reaches_the_policy_with_the_domain_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().policy().oversell_remediation is Remediation.NONE
    assert not Policy().remediates
    monkeypatch.setenv("STOCKFLOW_OVERSELL_REMEDIATION", "release_newest_pending")
    assert Settings().policy() == ON
    monkeypatch.setenv("STOCKFLOW_OVERSELL_REMEDIATION", "cancel_everything")
    with pytest.raises(ValueError, match="oversell_remediation"):
        Settings()
