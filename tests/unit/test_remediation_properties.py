"""Oversell remediation's invariants over random event sequences (hypothesis), and the one
interleaving rule it breaks on purpose."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.contract.events import INPUT_MODELS
from stockflow.devtools.workload import Item
from stockflow.domain.effects import Decision
from stockflow.domain.inputs import Event
from stockflow.domain.remediation import REASON
from stockflow.domain.rules import apply, may_lower_on_hand
from stockflow.domain.state import (
    LineKey,
    Policy,
    Quantities,
    Remediation,
    Reservation,
    Status,
    StockState,
    new_state,
)
from tests.factories import envelope, event
from tests.model import Model
from tests.unit.test_checkpoint import _plain, _through_the_checkpoint
from tests.unit.test_rules_properties import KEY, _unplaced, any_event

ON = Policy(oversell_remediation=Remediation.RELEASE_NEWEST_PENDING)
OFF = Policy()


ORDERS = st.sampled_from(["O1", "O2", "O3", "O4", "O5"])
LINES = st.sampled_from(["1", "2"])
QTY = st.integers(1, 12)
REF = st.integers(0, 10**6).map(str)  # mostly new references: few movements are no-ops


@st.composite
def oversold(draw: st.DrawFn) -> Event:
    """Events that reserve and then move stock away: any_event (test_rules_properties) covers
    every type but rarely oversells with pending lines to release."""
    kind = draw(st.sampled_from(
        ["order.placed"] * 5 + ["order.confirmed", "order.cancelled", "receipt.received",
                                "shipment.dispatched", "shipment.dispatched", "stock.counted",
                                "stock.counted", "stock.damaged", "stock.adjusted"]))
    ids: dict[str, Any] = {"order_id": draw(ORDERS), "line_id": draw(LINES)}
    match kind:
        case "order.placed":
            return event(kind, quantity=draw(QTY), allow_backorder=draw(st.booleans()), **ids)
        case "order.confirmed" | "order.cancelled":
            return event(kind, **ids)
        case "receipt.received":
            return event(kind, receipt_id=draw(REF), quantity=draw(st.integers(1, 30)))
        case "shipment.dispatched":
            named = draw(st.sampled_from([{}, {"order_id": ids["order_id"]}, ids]))
            return event(kind, shipment_id=draw(REF), quantity=draw(QTY), **named)
        case "stock.counted":
            return event(kind, count_id=draw(REF), on_hand=draw(st.integers(0, 20)))
        case "stock.damaged":
            return event(kind, damage_id=draw(REF), quantity=draw(QTY))
    return event(kind, adjustment_id=draw(REF), delta=draw(st.integers(-12, 12).filter(bool)),
                 reason="x")


# an opening stock, so that placements are accepted (pending) before stock goes away
EVENTS = st.builds(
    lambda q, rest: [event("receipt.received", receipt_id="R0", quantity=q), *rest],
    st.integers(10, 60),
    st.lists(st.one_of(any_event(), oversold(), oversold(), oversold()), min_size=15,
             max_size=60))


def _remediated(d: Decision) -> set[LineKey]:
    return {(str(o.data["order_id"]), str(o.data["line_id"])) for o in d.outputs
            if o.type == "reservation.released" and o.data.get("reason") == REASON}


def _releasable(lines: dict[LineKey, Reservation]) -> list[Reservation]:
    return [r for r in lines.values() if r.status is Status.PENDING and not r.backordered]


@settings(max_examples=400, deadline=None)
@given(EVENTS)
def test_remediation_releases_only_the_newest_pending_lines_it_needs(
    events: list[Event],
) -> None:
    state = new_state("SKU-1", "WH-1", ON)
    for ev in events:
        off, d = apply(state, ev, OFF), apply(state, ev, ON)
        assert not _remediated(off) and (off.ledger is None or off.ledger.remediated is None)
        gone = _remediated(d)
        if not gone:
            # nothing to remediate: the policy changes nothing at all
            assert d == off
        else:
            assert d.ledger is not None and off.ledger is not None
            # only after a physical movement that lowered on_hand (the shell loads the
            # key's pending lines for exactly the events may_lower_on_hand names)
            assert d.state.qty.on_hand < state.qty.on_hand and may_lower_on_hand(ev)
            moved = dict(off.state.lines)  # the lines as the movement alone left them
            taken = [moved[line] for line in gone]
            # never a confirmed, backordered or otherwise inactive line
            assert all(r.status is Status.PENDING and not r.backordered for r in taken)
            assert all(d.state.lines[r.line].status is Status.RELEASED
                       and d.state.lines[r.line].remaining == 0 for r in taken)
            freed = sum(r.remaining for r in taken)
            assert d.ledger.remediated == freed
            assert d.state.qty == off.state.qty.add(reserved=-freed)
            assert d.state.version == off.state.version  # one decision, one version
            # every other line as the movement left it
            assert {k: r for k, r in d.state.lines.items() if k not in gone} == \
                {k: r for k, r in moved.items() if k not in gone}
            # the newest first: no line kept pending is newer than one released
            kept = _releasable(dict(d.state.lines))
            oldest_taken = min(taken, key=lambda r: r.placed_version)
            assert all(r.placed_version < oldest_taken.placed_version for r in kept)
            # and no more than needed: whole lines, so only the last one may overshoot
            floor = min(0, state.qty.available)
            assert d.state.qty.available - oldest_taken.remaining < floor
        if d.state.qty.on_hand < state.qty.on_hand:
            assert d.state.qty.available >= min(0, state.qty.available) \
                or not _releasable(dict(d.state.lines))
        q = d.state.qty
        assert q.reserved == sum(r.remaining for r in d.state.lines.values() if r.active)
        state = d.state


def _model_run(events: list[Event], *, remediation: bool) -> Model:
    model = Model(remediation=remediation)
    model.feed_all((it.kind.value, it.key, it.value) for it in _items(events))
    return model


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.booleans())
def test_the_reference_model_agrees_with_the_rules_either_way(
    events: list[Event], on: bool,
) -> None:
    policy = ON if on else OFF
    state = new_state("SKU-1", "WH-1", policy)
    for ev in events:
        state = apply(state, ev, policy).state
    model = _model_run(events, remediation=on)
    assert Quantities(*model.key(KEY).quantities()) == state.qty
    assert model.line_states(KEY) == {
        line: (r.status.value, r.quantity, r.remaining, r.shipped)
        for line, r in state.lines.items()}


def _items(events: list[Event]) -> list[Item]:
    items = []
    for ev in events:
        kind, _ = INPUT_MODELS[ev.type]
        data = {"sku": ev.sku, "warehouse": ev.warehouse,
                **ev.data.model_dump(mode="json", exclude_none=True)}
        items.append(Item(kind, ev.key.encode(),
                          envelope(ev.type, data, id_=ev.id, at=ev.time)))
    return items


@settings(max_examples=150, deadline=None)
@given(EVENTS, st.lists(st.integers(1, 20), max_size=8))
def test_the_cache_hands_a_movement_every_pending_line_of_its_key(
    events: list[Event], cuts: list[int],
) -> None:
    """Through the processor's cache and checkpoint, in batches of random sizes, remediation
    decides as `apply` on states that hold every line (the cache gives other events only
    their order's lines)."""
    items = _items(events)
    assert _through_the_checkpoint(items, cuts, ON) == _plain(items, ON)


def _final(policy: Policy, events: list[Event]) -> StockState:
    state = new_state("SKU-1", "WH-1", policy)
    for ev in events:
        state = apply(state, ev, policy).state
    return state


def test_with_remediation_on_the_result_may_depend_on_how_a_line_and_its_shipment_interleave(
) -> None:
    """The contract's exception. M holds 6 of 10 when line L (8, backorder allowed) is
    placed and shipped in full. Placed first, L is backordered: available is -4 before the
    shipment and stays -4 after it, so nothing is released. Shipped first, the shipment
    takes available from 4 to -4, below 0, and M is released; L is then placed against
    its units already shipped."""
    setup = [event("receipt.received", receipt_id="R0", quantity=10),
             event("order.placed", order_id="M", line_id="1", quantity=6)]
    placed = event("order.placed", order_id="L", line_id="1", quantity=8, allow_backorder=True)
    shipped = event("shipment.dispatched", shipment_id="S1", order_id="L", line_id="1",
                    quantity=8)
    for policy in (OFF, ON):
        first, second = (_final(policy, setup + order) for order in
                         ([placed, shipped], [shipped, placed]))
        if policy is OFF:
            assert (first.qty, _unplaced(first)) == (second.qty, _unplaced(second))
        else:
            assert (first.qty.reserved, first.lines[("M", "1")].status) == (6, Status.PENDING)
            assert (second.qty.reserved, second.lines[("M", "1")].status) == (
                0, Status.RELEASED)
