"""Invariants of the stock rules over random event sequences (hypothesis)."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.contract.emit import output_id, output_message
from stockflow.contract.events import INPUT_MODELS, parse
from stockflow.contract.outputs import OUTPUT_MODELS, StockChanged
from stockflow.contract.topics import Topics
from stockflow.devtools.workload import Item, generate
from stockflow.domain.effects import Outcome
from stockflow.domain.inputs import Event
from stockflow.domain.rules import apply
from stockflow.domain.state import Policy, Quantities, Reservation, StockState, new_state
from tests.factories import T0, envelope, event, minutes
from tests.model import Model

POLICY = Policy()
ORDERS = st.sampled_from(["O1", "O2", "O3"])
LINES = st.sampled_from(["1", "2", "3"])
QTY = st.integers(1, 40)
REF = st.sampled_from(["a", "b", "c", "d"])
AT = st.integers(0, 40).map(lambda m: T0 + minutes(m))
KEY = "SKU-1@WH-1"


@st.composite
def any_event(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from([
        "order.placed", "order.confirmed", "order.cancelled", "reservation.expired",
        "shipment.dispatched", "transfer.dispatched", "transfer.incoming", "transfer.received",
        "receipt.received", "return.received", "stock.adjusted", "stock.counted",
        "stock.damaged", "stock.thresholds-set",
    ]))
    data: dict[str, Any] = {}
    match kind:
        case "order.placed":
            data = {"order_id": draw(ORDERS), "line_id": draw(LINES), "quantity": draw(QTY),
                    "allow_backorder": draw(st.booleans())}
        case "order.confirmed" | "order.cancelled":
            data = {"order_id": draw(ORDERS), "line_id": draw(st.none() | LINES)}
        case "reservation.expired":
            data = {"order_id": draw(ORDERS), "line_id": draw(LINES)}
        case "shipment.dispatched":
            data = {"shipment_id": draw(REF), "line_id": draw(st.none() | LINES),
                    "order_id": draw(st.none() | ORDERS), "quantity": draw(QTY)}
        case "transfer.dispatched":
            data = {"transfer_id": draw(REF), "to_warehouse": "WH-2", "quantity": draw(QTY)}
        case "transfer.incoming":
            data = {"transfer_id": draw(REF), "from_warehouse": "WH-2", "quantity": draw(QTY)}
        case "transfer.received":
            data = {"transfer_id": draw(REF), "quantity": draw(QTY)}
        case "receipt.received":
            data = {"receipt_id": draw(REF), "quantity": draw(QTY)}
        case "return.received":
            data = {"return_id": draw(REF), "quantity": draw(QTY),
                    "condition": draw(st.sampled_from(["resellable", "damaged"]))}
        case "stock.adjusted":
            data = {"adjustment_id": draw(REF), "reason": "x",
                    "delta": draw(st.integers(-40, 40).filter(bool))}
        case "stock.counted":
            data = {"count_id": draw(REF), "on_hand": draw(st.integers(0, 60))}
        case "stock.damaged":
            data = {"damage_id": draw(REF), "quantity": draw(QTY)}
        case "stock.thresholds-set":
            data = {"reorder_point": draw(st.integers(0, 20)),
                    "safety_stock": draw(st.integers(0, 10))}
    return event(kind, at=draw(AT), **data)


@settings(max_examples=300, deadline=None)
@given(st.lists(any_event(), max_size=60))
def test_invariants_hold_after_every_event(events: list[Event]) -> None:
    state = new_state("SKU-1", "WH-1", POLICY)
    ledger_on_hand = applied = 0
    for ev in events:
        d = apply(state, ev, POLICY)
        state = d.state
        if d.outcome is Outcome.APPLIED:
            applied += 1
            assert d.ledger is not None
            ledger_on_hand += d.ledger.after.on_hand - d.ledger.before.on_hand
        else:
            assert d.ledger is None and not d.outputs
        q = state.qty
        assert q.reserved == sum(r.remaining for r in state.lines.values() if r.active)
        assert q.reserved >= 0 and q.in_transit >= 0 and q.damaged >= 0
        assert all(0 <= r.remaining <= max(r.quantity, 0) for r in state.lines.values())
        assert q.on_hand == ledger_on_hand
        assert state.version == applied
        for out in d.outputs:
            # every payload the rules build is a valid instance of its schema model
            _, model = OUTPUT_MODELS.get(out.type) or INPUT_MODELS[out.type]
            model.model_validate(out.data)
            assert set(out.data) <= set(model.model_fields), out.data
            if out.type == "stock.changed":
                c = StockChanged.model_validate(out.data)
                assert c.available == c.on_hand - c.reserved
                assert (c.on_hand, c.reserved, c.in_transit, c.damaged, c.version) == (
                    q.on_hand, q.reserved, q.in_transit, q.damaged, state.version)


def _line_streams(order: str, line: str, qty: int, *, backorder: bool, confirm: bool,
                  expire: bool, cancel: str, shipments: list[int]) -> list[list[Event]]:
    """The line's orders-topic events (in their order) and one stream per shipment naming
    the line: shipments of one key keep their order too, but the result must not depend
    on it either."""
    ids: dict[str, Any] = {"order_id": order, "line_id": line}
    orders = [event("order.cancelled", **ids)] if cancel == "before" else []
    orders.append(event("order.placed", quantity=qty, allow_backorder=backorder, **ids))
    if confirm:
        orders.append(event("order.confirmed", **ids))
    if expire:  # past the default 15-minute expiry: releases the line if still pending
        orders.append(event("reservation.expired", at=T0 + minutes(20), **ids))
    if cancel == "after":
        orders.append(event("order.cancelled", **ids))
    streams = [orders]
    for n, q in enumerate(shipments):
        streams.append([event("shipment.dispatched", shipment_id=f"S-{order}-{line}-{n}",
                              quantity=q, **ids)])
    return streams


def _transfer_streams(transfer: str, qty: int) -> list[list[Event]]:
    return [[event("transfer.incoming", transfer_id=transfer, from_warehouse="WH-9",
                   quantity=qty)],
            [event("transfer.received", transfer_id=transfer, quantity=qty)]]


Scenario = tuple[int, int, list[list[Event]], list[int]]


@st.composite
def scenario(draw: st.DrawFn) -> Scenario:
    # With scarce stock only one line may be in play: other lines and transfers legitimately
    # change whether it can be reserved. With ample stock everything commutes.
    scarce = draw(st.booleans())
    n_lines = 1 if scarce else draw(st.integers(1, 4))
    streams: list[list[Event]] = []
    for i in range(n_lines):
        qty = draw(QTY)
        # 0-3 shipments of any size: in total less than, equal to or more than the line
        streams += _line_streams(
            f"O{i % 2}", str(i), qty, backorder=scarce and draw(st.booleans()),
            confirm=draw(st.booleans()), expire=draw(st.booleans()),
            cancel=draw(st.sampled_from(["", "", "before", "after"])),
            shipments=draw(st.lists(st.integers(1, qty + 5), max_size=3)))
    for t in range(0 if scarce else draw(st.integers(0, 2))):
        streams += _transfer_streams(f"T{t}", draw(QTY))
    safety = draw(st.integers(0, 10)) if scarce else 0
    # scarce: just enough for the line, or a few units short (the placement's verdict then
    # hangs on the units shipped before it)
    stock = max(qty + safety + draw(st.integers(-6, 3)), 0) if scarce else 10_000
    total = sum(len(s) for s in streams)
    picks = draw(st.lists(st.integers(0, 10_000), min_size=total, max_size=total))
    return stock, safety, streams, picks


def _merge(streams: list[list[Event]], picks: list[int]) -> list[Event]:
    queues = [list(s) for s in streams]
    out = []
    for p in picks:
        live = [q for q in queues if q]
        out.append(live[p % len(live)].pop(0))
    return out


LineStates = dict[tuple[str, str], tuple[str, int, int, int]]


def _opening(stock: int, safety: int) -> list[Event]:
    return [event("receipt.received", receipt_id="R0", quantity=stock or 1),
            event("stock.thresholds-set", reorder_point=10, safety_stock=safety)]


def _final(stock: int, safety: int, events: list[Event]) -> StockState:
    state: StockState = new_state("SKU-1", "WH-1", POLICY)
    for ev in _opening(stock, safety) + events:
        state = apply(state, ev, POLICY).state
    return state


def _summary(state: StockState) -> tuple[Quantities, LineStates]:
    return state.qty, {line: (r.status.value, r.quantity, r.remaining, r.shipped)
                       for line, r in state.lines.items()}


def _unplaced(state: StockState) -> dict[tuple[str, str], Reservation]:
    return {line: r._replace(placed_version=0) for line, r in state.lines.items()}


def _modelled(stock: int, safety: int, events: list[Event]) -> tuple[Quantities, LineStates]:
    """The same events through the independent replay model (tests/model.py)."""
    model = Model()
    for ev in _opening(stock, safety) + events:
        kind, _ = INPUT_MODELS[ev.type]
        data = {"sku": ev.sku, "warehouse": ev.warehouse,
                **ev.data.model_dump(mode="json", exclude_none=True)}
        model.feed(kind.value, ev.key.encode(), envelope(ev.type, data, id_=ev.id, at=ev.time))
    return Quantities(*model.key(KEY).quantities()), model.line_states(KEY)


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_interleaving_of_a_lines_or_transfers_events_does_not_change_the_result(
    case: Scenario,
) -> None:
    """Quantities and every line's (status, quantity, remaining, shipped) come out the same
    whichever way the topics interleave, and the replay model agrees with the rules."""
    stock, safety, streams, picks = case
    in_order = [ev for s in streams for ev in s]
    merged = _merge(streams, picks)
    expected, got = _final(stock, safety, in_order), _final(stock, safety, merged)
    assert _summary(got) == _summary(expected)
    # backordered, expiry, line_count too; not placed_version, the key's version at the
    # placement, which records the interleaving itself (what oversell remediation reads)
    assert _unplaced(got) == _unplaced(expected)
    assert _modelled(stock, safety, merged) == _summary(expected)


def _replayed(items: list[Item]) -> dict[str, tuple[Quantities, LineStates]]:
    """Items through the rules as the processor applies them (ids de-duplicated)."""
    states: dict[str, StockState] = {}
    seen: set[str] = set()
    for item in items:
        ev = parse(item.kind, item.key, item.value)
        if not isinstance(ev, Event) or ev.id in seen:
            continue
        d = apply(states.get(ev.key) or new_state(ev.sku, ev.warehouse, POLICY), ev, POLICY)
        if d.outcome is not Outcome.REJECTED:
            seen.add(ev.id)
        states[ev.key] = d.state
    return {k: _summary(s) for k, s in states.items()}


def test_the_workload_ends_the_same_in_any_interleaving_and_the_model_agrees() -> None:
    wl = generate(events=4000, skus=30, warehouses=3, seed=5)
    expected = _replayed(wl.setup + wl.stream)
    model = Model()
    model.feed_all((i.kind.value, i.key, i.value) for i in wl.setup + wl.stream)
    assert {k: (Quantities(*s.quantities()), model.line_states(k))
            for k, s in model.keys.items()} == expected
    queues: dict[tuple[bytes | None, str], list[Item]] = {}
    for item in wl.stream:  # the same per (key, topic) queues, merged another way
        queues.setdefault((item.key, item.kind), []).append(item)
    rng = random.Random(1)
    placed: list[tuple[float, int, Item]] = []
    for queue in queues.values():
        for spot, item in zip(sorted(rng.random() for _ in queue), queue, strict=True):
            placed.append((spot, len(placed), item))
    placed.sort(key=lambda t: t[:2])
    assert _replayed(wl.setup + [item for _, _, item in placed]) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(any_event(), max_size=30),
       st.text(min_size=1, max_size=40))
def test_output_envelopes_carry_the_exact_data(events: list[Event], weird_id: str) -> None:
    state = new_state("SKU-1", "WH-1", POLICY)
    for i, original in enumerate(events):
        ev = original if i % 2 else original._replace(id=weird_id + str(i))  # needs escaping
        d = apply(state, ev, POLICY)
        state = d.state
        for out in d.outputs:
            doc = json.loads(output_message(Topics(), ev.id, out, "t").value or b"")
            assert doc["data"] == json.loads(json.dumps(out.data))
            assert doc["id"] == output_id(ev.id, out.type, out.line)
            if out.type in OUTPUT_MODELS:  # not the forwarded transfer.incoming
                assert doc["data"]["cause"] == {"event_id": ev.id, "type": ev.type}
