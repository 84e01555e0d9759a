"""Purchase orders at a key (contract v1.1): `purchase-order.placed` and `.cancelled`, and
the receipts that name a purchase order, move the key's `on_order` by what they change in
the order's open units (`PurchaseOrder.open`, derived from the order's facts alone, so the
interleaving of its events and receipts does not matter)."""

from __future__ import annotations

from types import MappingProxyType

from stockflow.domain.change import Change, noop
from stockflow.domain.effects import Decision
from stockflow.domain.inputs import PurchaseOrderCancelled, PurchaseOrderPlaced, ReceiptReceived
from stockflow.domain.state import PoLine, PurchaseOrder, StockState

__all__ = ["cancelled", "placed", "receiving"]


def placed(state: StockState, d: PurchaseOrderPlaced) -> Change | Decision:
    """A purchase-order line placed: its quantity goes on order (less what receipts that
    named it brought before); the same line placed again is a no-op."""
    po = _of(state, d.po_id)
    line_id = d.line_id or ""
    line = po.lines.get(line_id, PoLine())
    if line.ordered is not None:
        return noop(state, "purchase-order line already placed")
    # recorded even when a cancel came first: placing then cancelling gives the same facts
    return _moved(state, po, _with_line(po, line_id, line._replace(
        ordered=d.quantity, expected_at=d.expected_at)))


def cancelled(state: StockState, d: PurchaseOrderCancelled) -> Change | Decision:
    """A purchase-order line, or the whole order, cancelled: what it still had open is no
    longer on order (a line not placed yet is remembered as cancelled)."""
    po = _of(state, d.po_id)
    if d.line_id is None:
        if po.cancelled:
            return noop(state, "purchase order already cancelled")
        return _moved(state, po, po._replace(cancelled=True))
    line = po.lines.get(d.line_id, PoLine())
    if line.cancelled:
        return noop(state, "purchase-order line already cancelled")
    return _moved(state, po, _with_line(po, d.line_id, line._replace(cancelled=True)))


def receiving(state: StockState, d: ReceiptReceived, change: Change) -> Change:
    """A receipt's change (units on hand), with what it receives on the purchase order it
    names: on that line, or, naming no line, on the order's lines in line-id order."""
    assert d.po_id is not None
    po = _of(state, d.po_id)
    if d.line_id is None:
        after = po._replace(unnamed=po.unnamed + d.quantity)
    else:
        line = po.lines.get(d.line_id, PoLine())
        after = _with_line(po, d.line_id, line._replace(received=line.received + d.quantity))
    return change._replace(qty=change.qty.add(on_order=after.open() - po.open()), po=after)


def _of(state: StockState, po_id: str) -> PurchaseOrder:
    po = state.po
    return po if po is not None and po.po_id == po_id else PurchaseOrder(po_id)


def _with_line(po: PurchaseOrder, line_id: str, line: PoLine) -> PurchaseOrder:
    return po._replace(lines=MappingProxyType({**po.lines, line_id: line}))


def _moved(state: StockState, before: PurchaseOrder, after: PurchaseOrder) -> Change:
    return Change(state.qty.add(on_order=after.open() - before.open()), po=after)
