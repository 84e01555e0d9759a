"""Purchase orders at a key (contract v1.1): on_order from purchase-order.placed and
.cancelled and the receipts that name them, the same whatever order they arrive in, and
the same as the independent model's (tests/model.py), which replays them another way."""

from __future__ import annotations

import json
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.domain.effects import Outcome
from stockflow.domain.inputs import Event
from stockflow.domain.rules import apply, purchase_order_of
from stockflow.domain.state import DEFAULT_POLICY, PurchaseOrder, StockState, new_state
from tests.factories import envelope, event
from tests.model import Model

KEY = "SKU-1@WH-1"


def play(events: Sequence[Event]) -> tuple[StockState, list[dict[str, int]]]:
    """The rules over `events` in turn, each seeing its purchase order as the shell would
    hand it; the final state and every stock.changed delta."""
    state = new_state("SKU-1", "WH-1", DEFAULT_POLICY)
    orders: dict[str, PurchaseOrder] = {}
    deltas = []
    for ev in events:
        po_id = purchase_order_of(ev)
        state = state._replace(po=orders.get(po_id) if po_id else None)
        got = apply(state, ev, DEFAULT_POLICY)
        assert got.outcome is not Outcome.REJECTED, got.message
        if got.outcome is Outcome.APPLIED:
            state = got.state
            if got.po is not None:
                orders[got.po.po_id] = got.po
            deltas += [o.data["delta"] for o in got.outputs if o.type == "stock.changed"]
    return state, deltas


def placed(po: str, q: int, line: str | None = None, id_: str | None = None) -> Event:
    return event("purchase-order.placed", KEY, id_=id_, po_id=po, line_id=line, quantity=q)


def received(rid: str, q: int, po: str | None, line: str | None = None) -> Event:
    return event("receipt.received", KEY, receipt_id=rid, quantity=q, po_id=po, line_id=line)


def cancelled(po: str, line: str | None = None) -> Event:
    return event("purchase-order.cancelled", KEY, po_id=po, line_id=line)


def test_a_purchase_order_through_its_receipts_and_a_cancel() -> None:
    state, deltas = play([
        placed("P1", 5, "L1"), placed("P1", 3, "L2"),
        received("R1", 2, "P1", "L1"),  # L1: 3 open
        received("R2", 4, "P1"),  # no line: L1 takes 3, L2 1
        placed("P1", 3, "L2"),  # the same line again: a no-op
        cancelled("P1", "L2"),  # what L2 still had open: 2
        placed("P2", 10), received("R3", 12, "P2"),  # more than ordered: never below 0
    ])
    assert state.qty.on_order == 0
    assert state.qty.on_hand == 2 + 4 + 12
    assert [d["on_order"] for d in deltas] == [5, 3, -2, -4, -2, 10, -10]


def test_each_lines_open_units_add_up_to_the_orders() -> None:
    state, _ = play([placed("P1", 5, "L1"), placed("P1", 3, "L2"), placed("P1", 4, "L3"),
                     received("R1", 6, "P1"),  # no line: L1 takes 5, L2 1
                     cancelled("P1", "L3")])
    assert state.po is not None
    assert state.po.open_lines() == {"L1": 0, "L2": 2, "L3": 0}
    assert state.po.open() == state.qty.on_order == 2


OPS = st.one_of(
    st.tuples(st.just("placed"), st.sampled_from(["P1", "P2"]),
              st.sampled_from([None, "L1", "L2", "L3"]), st.integers(1, 9)),
    st.tuples(st.just("received"), st.sampled_from(["P1", "P2"]),
              st.sampled_from([None, "L1", "L2"]), st.integers(1, 9)),
    st.tuples(st.just("cancelled"), st.sampled_from(["P1", "P2"]),
              st.sampled_from([None, "L1", "L2", "L3"]), st.just(0)),
)


def _events(ops: list[tuple[str, str, str | None, int]]) -> list[Event]:
    """The events of `ops`; a line placed again is placed with the same quantity (a
    resent placement: two different bodies for one line are a conflict, and the first to
    arrive wins, so their order would matter)."""
    out = []
    quantities: dict[tuple[str, str | None], int] = {}
    for i, (kind, po, line, q) in enumerate(ops):
        if kind == "placed":
            out.append(placed(po, quantities.setdefault((po, line), q), line, id_=f"e{i}"))
        elif kind == "received":
            out.append(event("receipt.received", KEY, id_=f"e{i}", receipt_id=f"R{i}",
                             quantity=q, po_id=po, line_id=line))
        else:
            out.append(event("purchase-order.cancelled", KEY, id_=f"e{i}", po_id=po,
                             line_id=line))
    return out


def _model(events: Sequence[Event]) -> Model:
    model = Model()
    for ev in events:
        data = {"sku": ev.sku, "warehouse": ev.warehouse,
                **ev.data.model_dump(mode="json", exclude_none=True)}
        model.feed("receipts", KEY.encode(), envelope(ev.type, data, id_=ev.id))
    return model


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, max_size=12), st.randoms(use_true_random=False))
def test_on_order_does_not_depend_on_the_order_of_a_purchase_orders_events(
        ops: list[tuple[str, str, str | None, int]], rng: object) -> None:
    events = _events(ops)
    shuffled = list(events)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    first, deltas = play(events)
    second, _ = play(shuffled)
    assert first.qty == second.qty
    assert first.qty.on_order >= 0
    for po in (po for po in (first.po, second.po) if po is not None):
        assert all(units >= 0 for units in po.open_lines().values())
        assert sum(po.open_lines().values()) == po.open()
    assert sum(d["on_order"] for d in deltas) == first.qty.on_order
    model = _model(shuffled)
    assert model.key(KEY).on_order == first.qty.on_order
    assert model.key(KEY).on_hand == first.qty.on_hand
    json.dumps(deltas)  # the outputs are plain data
