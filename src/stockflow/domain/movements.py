"""Physical movements: shipments, transfers, receipts, returns, adjustments, counts, damage,
and thresholds. A movement's reference makes a repeat of it a no-op."""

from __future__ import annotations

from decimal import Decimal

from stockflow.domain.change import Change, noop, oversell, reference, rejected, seen
from stockflow.domain.effects import Decision, Output
from stockflow.domain.inputs import (
    Event,
    ReturnReceived,
    ShipmentDispatched,
    StockAdjusted,
    StockCounted,
    StockDamaged,
    ThresholdsSet,
    TransferDispatched,
    TransferIncoming,
    TransferReceived,
)
from stockflow.domain.reservations import consume, ship_line
from stockflow.domain.state import Reservation, StockState

__all__ = ["adjusted", "counted", "damaged", "received", "returned", "shipped", "thresholds",
           "transfer_dispatched", "transfer_incoming", "transfer_received"]


def shipped(state: StockState, event: Event, d: ShipmentDispatched) -> Change | Decision:
    """A shipment: on_hand goes down, and what the order it names had reserved with it; more
    than on hand is reported as an oversell."""
    ref = reference("shipment", d.shipment_id, d.line_id)
    if seen(state, [ref]):
        return noop(state, "shipment already applied")
    before = state.qty.on_hand
    outputs: list[Output] = []
    lines: tuple[Reservation, ...]
    if d.quantity > before:
        outputs.append(oversell(
            state, event, "shipment_exceeds_on_hand", d.quantity, before,
            order_id=d.order_id, line_id=d.line_id, shipment_id=d.shipment_id))
    taken, lines = 0, ()
    if d.order_id is not None:
        taken, lines, more = (
            consume(state, event, d.order_id, d.quantity) if d.line_id is None
            else ship_line(state, event, d.order_id, d.line_id, d.quantity))
        outputs.extend(more)
    qty = state.qty.add(on_hand=-d.quantity, reserved=-taken)
    return Change(qty, lines=lines, refs=((ref, d.quantity),), outputs=tuple(outputs),
                   reference=ref)


def transfer_dispatched(
    state: StockState, event: Event, d: TransferDispatched,
) -> Change | Decision:
    """A transfer out: on_hand goes down here."""
    ref = reference("transfer-dispatched", d.transfer_id)
    if seen(state, [ref]):
        return noop(state, "transfer already dispatched")
    before = state.qty.on_hand
    outputs: list[Output] = []
    if d.quantity > before:
        outputs.append(oversell(state, event, "shipment_exceeds_on_hand", d.quantity, before,
                                 transfer_id=d.transfer_id))
    incoming = {"transfer_id": d.transfer_id, "sku": d.sku, "warehouse": d.to_warehouse,
                "from_warehouse": d.warehouse, "quantity": d.quantity}
    target = f"{d.sku}@{d.to_warehouse}"
    outputs.append(Output("transfer.incoming", target, target, incoming))
    qty = state.qty.add(on_hand=-d.quantity)
    return Change(qty, refs=((ref, d.quantity),), outputs=tuple(outputs), reference=ref)


def transfer_incoming(state: StockState, d: TransferIncoming) -> Change | Decision:
    """A transfer announced: in_transit goes up here."""
    ref = reference("transfer-incoming", d.transfer_id)
    received = reference("transfer-received", d.transfer_id)
    if seen(state, [ref, received]):
        return noop(state, "transfer already announced or received")
    qty = state.qty.add(in_transit=d.quantity)
    return Change(qty, refs=((ref, d.quantity),), reference=ref)


def transfer_received(state: StockState, d: TransferReceived) -> Change | Decision:
    """A transfer in: on_hand goes up, and in_transit down by what was announced."""
    ref = reference("transfer-received", d.transfer_id)
    if seen(state, [ref]):
        return noop(state, "transfer already received")
    announced = state.refs.get(reference("transfer-incoming", d.transfer_id), 0)
    qty = state.qty.add(on_hand=d.quantity, in_transit=-announced)
    return Change(qty, refs=((ref, d.quantity),), reference=ref)


def received(state: StockState, ref: str, quantity: int,
             cost: tuple[Decimal, str] | None = None) -> Change | Decision:
    """Units received; with `cost` (unit cost, currency) they re-average the key's cost.
    A key is valued in one currency: a cost in another is rejected, not converted."""
    if seen(state, [ref]):
        return noop(state, "receipt already applied")
    if cost is not None and state.currency is not None and cost[1] != state.currency:
        return rejected(state, f"the receipt is costed in {cost[1]}, the key is valued in "
                               f"{state.currency}", "currency_mismatch")
    qty = state.qty.add(on_hand=quantity)
    return Change(qty, refs=((ref, quantity),), reference=ref, cost=cost)


def returned(state: StockState, d: ReturnReceived) -> Change | Decision:
    """A return: resellable units back on hand, damaged ones counted as damaged."""
    ref = reference("return", d.return_id, d.line_id)
    if d.condition == "resellable":
        return received(state, ref, d.quantity)
    if seen(state, [ref]):
        return noop(state, "return already applied")
    qty = state.qty.add(damaged=d.quantity)
    return Change(qty, refs=((ref, d.quantity),), reference=ref)


def adjusted(state: StockState, d: StockAdjusted) -> Change | Decision:
    """An adjustment of on_hand by its delta, refused below zero."""
    ref = reference("adjustment", d.adjustment_id)
    if seen(state, [ref]):
        return noop(state, "adjustment already applied")
    after = state.qty.on_hand + d.delta
    if d.delta < 0 and after < 0:
        return rejected(state, f"on_hand {state.qty.on_hand} {d.delta:+d} would be {after}")
    return Change(state.qty.add(on_hand=d.delta), refs=((ref, d.delta),), reference=ref,
                   note=d.reason)


def counted(state: StockState, d: StockCounted) -> Change | Decision:
    """A cycle count: on_hand becomes what was counted."""
    ref = reference("count", d.count_id)
    if seen(state, [ref]):
        return noop(state, "count already applied")
    q = state.qty
    return Change(q._replace(on_hand=d.on_hand),
                   refs=((ref, d.on_hand),),
                   reference=ref, note="cycle_count")


def damaged(state: StockState, d: StockDamaged) -> Change | Decision:
    """Damage: units move from on_hand to damaged."""
    ref = reference("damage", d.damage_id)
    if seen(state, [ref]):
        return noop(state, "damage already applied")
    if d.quantity > state.qty.on_hand:
        return rejected(state, f"damaging {d.quantity} exceeds on_hand {state.qty.on_hand}")
    qty = state.qty.add(on_hand=-d.quantity, damaged=d.quantity)
    return Change(qty, refs=((ref, d.quantity),), reference=ref)


def thresholds(state: StockState, d: ThresholdsSet) -> Change | Decision:
    """New reorder point and safety stock for the key."""
    wanted = (d.reorder_point, d.safety_stock)
    if wanted == (state.reorder_point, state.safety_stock):
        return noop(state, "thresholds unchanged")
    return Change(state.qty, thresholds=wanted)
