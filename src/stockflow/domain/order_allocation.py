"""Allocation as the order coordinator asks for it (`stockflow.domain.orders`): whole
requests or one line's lost units, pins that can no longer be served, and what each line
could have when an order fails."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet

from stockflow.domain.allocation import (
    Allocation,
    LineRequest,
    LineShort,
    OrderRequest,
    Shortfall,
    allocate,
)
from stockflow.domain.order_inputs import OrderRequested, RequestedLine
from stockflow.domain.order_state import HELD, Context, OrderPart, PartStatus
from stockflow.domain.warehouses import Location

__all__ = ["allocate_lines", "line_shorts"]


def allocate_lines(
    request: OrderRequested, context: Context, lines: Iterable[RequestedLine | LineRequest],
    excluded: Mapping[str, AbstractSet[str]], ships_from: AbstractSet[str] = frozenset(),
) -> Allocation | Shortfall:
    """`allocation.allocate` over `lines` with the order's strategy and ship_to, from the
    context's registry and snapshot (`ships_from`: see there). A line pinned to a
    warehouse allocation may not choose (unregistered or inactive) is short of everything
    rather than an error: it takes nothing, so the other lines get what they would
    without it."""
    usable = {w.code for w in context.warehouses if w.active}
    wanted = [LineRequest(ln.line_id, ln.sku, ln.quantity, ln.warehouse) for ln in lines]
    servable = [ln for ln in wanted if ln.warehouse is None or ln.warehouse in usable]
    ship_to = request.ship_to
    order = OrderRequest(tuple(servable), request.strategy,
                         None if ship_to is None else Location(ship_to.lat, ship_to.lon))
    result = allocate(order, context.warehouses, context.snapshot, excluded, ships_from) \
        if servable else Allocation(())
    if len(servable) == len(wanted):
        return result
    got = ({ln.line_id: ln.allocatable for ln in result.lines} if isinstance(result, Shortfall)
           else {ln.line_id: ln.quantity for ln in result.lines})
    return Shortfall(tuple(LineShort(ln.line_id, ln.sku, ln.quantity, got.get(ln.line_id, 0))
                           for ln in wanted))


def line_shorts(
    lines: Sequence[RequestedLine], parts: Sequence[OrderPart], lost: str | None = None,
    found: int = 0,
) -> tuple[LineShort, ...]:
    """Each line with the units it held or had in flight when the order ended, plus, for
    the `lost` line, what re-sourcing could still `found` (`order.rejected`'s lines)."""
    had = dict.fromkeys((line.line_id for line in lines), 0)
    for p in parts:
        if p.status in HELD or p.status is PartStatus.PLACED:
            had[p.line_id] += p.quantity
    if lost is not None:
        had[lost] += found
    return tuple(LineShort(line.line_id, line.sku, line.quantity,
                           min(line.quantity, had[line.line_id])) for line in lines)
