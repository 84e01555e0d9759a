"""The stock rules of the contract: `apply(state, event, policy) -> Decision`, no I/O.

Output payloads are plain dicts shaped like the output models in `stockflow.contract.outputs`
(a unit test validates every payload against its model): building pydantic models here
would cost more than the rules themselves.

Every handler (`reservations`, `movements`) turns one typed event into a `Change` (or a
no-op or rejection decision); with oversell remediation on, a change that lowered on_hand
goes through `remediation.remedied`; `settle` then does what every applied change shares:
version, ledger entry, stock.changed and the low-stock transition.
"""

from __future__ import annotations

from typing import assert_never

from stockflow.domain import movements as mv
from stockflow.domain import purchase_orders as po
from stockflow.domain import reservations as rs
from stockflow.domain import valuation
from stockflow.domain.change import Change, cause, reference
from stockflow.domain.effects import Decision, LedgerEntry, Outcome, Output
from stockflow.domain.inputs import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    PurchaseOrderCancelled,
    PurchaseOrderPlaced,
    ReceiptReceived,
    ReservationExpired,
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
from stockflow.domain.remediation import may_lower_on_hand, remedied
from stockflow.domain.state import (
    LineKey,
    Policy,
    Reservation,
    Severity,
    StockState,
    severity_of,
)

__all__ = ["apply", "may_lower_on_hand", "order_of", "purchase_order_of", "reference",
           "references_of"]


def references_of(event: Event) -> tuple[str, ...]:
    """The movement references applying `event` may read: the shell loads just these."""
    d = event.data
    match d:
        case ShipmentDispatched():
            return (reference("shipment", d.shipment_id, d.line_id),)
        case TransferDispatched():
            return (reference("transfer-dispatched", d.transfer_id),)
        case TransferIncoming() | TransferReceived():
            return (reference("transfer-incoming", d.transfer_id),
                    reference("transfer-received", d.transfer_id))
        case ReceiptReceived():
            return (reference("receipt", d.receipt_id, d.line_id),)
        case ReturnReceived():
            return (reference("return", d.return_id, d.line_id),)
        case StockAdjusted():
            return (reference("adjustment", d.adjustment_id),)
        case StockCounted():
            return (reference("count", d.count_id),)
        case StockDamaged():
            return (reference("damage", d.damage_id),)
    return ()


_ORDERED = (OrderPlaced, OrderConfirmed, OrderCancelled, ReservationExpired, ShipmentDispatched)


def order_of(event: Event) -> str | None:
    """The order whose reservation lines at this key `event` may read or change."""
    d = event.data
    return d.order_id if isinstance(d, _ORDERED) else None


def purchase_order_of(event: Event) -> str | None:
    """The purchase order whose facts at this key `event` may read or change."""
    d = event.data
    if isinstance(d, PurchaseOrderPlaced | PurchaseOrderCancelled | ReceiptReceived):
        return d.po_id
    return None


def apply(state: StockState, event: Event, policy: Policy) -> Decision:
    """Apply one event to one key's state."""
    d = event.data
    result: Change | Decision
    match d:
        case OrderPlaced():
            result = rs.placed(state, event, d, policy)
        case OrderConfirmed():
            result = rs.confirmed(state, event, d)
        case OrderCancelled():
            result = rs.cancelled(state, event, d)
        case ReservationExpired():
            result = rs.expired(state, event, d)
        case ShipmentDispatched():
            result = mv.shipped(state, event, d)
        case TransferDispatched():
            result = mv.transfer_dispatched(state, event, d)
        case TransferIncoming():
            result = mv.transfer_incoming(state, d)
        case TransferReceived():
            result = mv.transfer_received(state, d)
        case ReceiptReceived():
            cost = (d.unit_cost, d.currency) if d.unit_cost is not None and d.currency else None
            result = mv.received(state, reference("receipt", d.receipt_id, d.line_id),
                                 d.quantity, cost)
            if d.po_id is not None and isinstance(result, Change):
                result = po.receiving(state, d, result)
        case PurchaseOrderPlaced():
            result = po.placed(state, d)
        case PurchaseOrderCancelled():
            result = po.cancelled(state, d)
        case ReturnReceived():
            result = mv.returned(state, d)
        case StockAdjusted():
            result = mv.adjusted(state, d)
        case StockCounted():
            result = mv.counted(state, d)
        case StockDamaged():
            result = mv.damaged(state, d)
        case ThresholdsSet():
            result = mv.thresholds(state, d)
        case _:
            assert_never(d)
    if isinstance(result, Decision):
        return result
    if result.qty.on_hand < state.qty.on_hand and policy.remediates:
        result = remedied(state, event, result)
    return settle(state, event, result)


def settle(state: StockState, event: Event, change: Change) -> Decision:
    """The decision of a change: the new state, its severity and version, the ledger entry and
    the outputs."""
    reorder_point, safety_stock = change.thresholds or (state.reorder_point, state.safety_stock)
    old, qty = state.qty, change.qty
    available = qty.on_hand - qty.reserved
    severity = severity_of(available, reorder_point)
    version = state.version + 1
    lines = state.lines
    if change.lines:
        merged: dict[LineKey, Reservation] = dict(lines)
        merged.update({(r.order_id, r.line_id): r for r in change.lines})
        lines = merged
    refs = state.refs
    if change.refs:
        refs = {**refs, **dict(change.refs)}
    unit_cost, currency, value = state.unit_cost, state.currency, None
    moved = qty.on_hand - old.on_hand
    if change.cost is not None:
        paid, currency = change.cost
        unit_cost = valuation.averaged(old.on_hand, unit_cost, moved, paid)
        value = valuation.moved(moved, paid)
    elif moved and unit_cost is not None:
        value = valuation.moved(moved, unit_cost)
    # StockState and LedgerEntry are built positionally, in their fields' order: a
    # NamedTuple binds each keyword by name, and this runs for every applied event
    new = StockState(state.sku, state.warehouse, qty, version, reorder_point, safety_stock,
                     severity, unit_cost, currency, lines, refs, change.po or state.po)
    outputs: list[Output] = []
    caused_by = cause(event)
    key = state.key
    if qty != old:
        outputs.append(Output("stock.changed", key, key, {
            "sku": state.sku, "warehouse": state.warehouse, "on_hand": qty.on_hand,
            "reserved": qty.reserved, "available": available, "in_transit": qty.in_transit,
            "damaged": qty.damaged, "on_order": qty.on_order, "version": version,
            "delta": {"on_hand": qty.on_hand - old.on_hand,
                      "reserved": qty.reserved - old.reserved,
                      "in_transit": qty.in_transit - old.in_transit,
                      "damaged": qty.damaged - old.damaged,
                      "on_order": qty.on_order - old.on_order},
            "cause": caused_by}))
    outputs.extend(change.outputs)
    if severity != state.severity:
        word = ("raised" if state.severity is Severity.OK
                else "resolved" if severity is Severity.OK else "changed")
        outputs.append(Output(f"low-stock.{word}", key, key, {
            "sku": state.sku, "warehouse": state.warehouse, "severity": severity,
            "available": available, "reorder_point": reorder_point,
            "safety_stock": safety_stock, "cause": caused_by}))
    ledger = LedgerEntry(event.id, event.type, old, qty, version, change.reference,
                         change.note, event.source or None, event.time, value, unit_cost,
                         change.lost or None, change.remediated or None)
    return Decision(new, Outcome.APPLIED, tuple(outputs), ledger, change.lines, change.refs,
                    po=change.po)
