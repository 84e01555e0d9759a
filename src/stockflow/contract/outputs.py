"""The contract's output events: what stockflow emits, as pydantic models. The rules build
their payloads as plain dicts of these shapes (a unit test validates every one).

`OUTPUT_MODELS` are the stock processor's; `STATUS_MODELS` the order coordinator's, on
`inventory.order-status` (keyed by order_id). They are kept apart because two of the
statuses share a type name with stock inputs (order.confirmed, order.cancelled), and a
type alone must keep naming one topic for the processor's outputs (`emit.topic_of`)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from stockflow.contract.topics import TopicKind
from stockflow.domain.allocation import Strategy
from stockflow.domain.inputs import AtKey, Data, Ident, Name, OversellKind
from stockflow.domain.state import Severity

__all__ = ["OUTPUT_MODELS", "STATUS_MODELS", "Cause", "LowStock", "OrderAllocated",
           "OrderCancelledStatus", "OrderConfirmedStatus", "OrderReallocated", "OrderRejected",
           "OversellDetected", "ReorderSuggested", "ReservationEvent", "StockChanged"]


class Cause(Data):
    event_id: Ident
    type: str


class Deltas(Data):
    on_hand: int
    reserved: int
    in_transit: int
    damaged: int
    on_order: int


class StockChanged(AtKey):
    on_hand: int
    reserved: int
    available: int
    in_transit: int
    damaged: int
    on_order: int  # ordered from suppliers, not yet received (purchase orders)
    version: int
    delta: Deltas
    cause: Cause


class LowStock(AtKey):
    severity: Severity
    available: int
    reorder_point: int
    safety_stock: int
    cause: Cause


class OversellDetected(AtKey):
    kind: OversellKind
    requested: int
    available_before: int
    shortfall: int
    order_id: str | None = None
    line_id: str | None = None
    shipment_id: str | None = None
    transfer_id: str | None = None
    cause: Cause


class ReservationEvent(AtKey):
    order_id: Ident
    line_id: Ident
    quantity: int
    backordered: bool | None = None
    line_count: int | None = None
    reason: str | None = Field(default=None, description=(
        "why: `insufficient_stock` on a rejection; on a release, the cancel's reason or"
        " `oversell_remediation` (released by the processor after a movement oversold)"))
    cause: Cause


class ReorderSuggested(AtKey):
    """A reorder suggestion from `stockflow forecast --publish` (not from the processor):
    when the key's inventory position (available + in transit + on order) is under its
    reorder point, order `suggested_quantity` to bring it up to `order_up_to`."""

    as_of: date  # the forecast's history ends the day before
    model: str
    lead_time_days: int
    review_days: int
    service_level: float
    lead_time_demand: float  # forecast units over the lead time
    safety_stock: int
    reorder_point: int
    order_up_to: int
    on_hand: int
    available: int
    in_transit: int
    on_order: int = 0  # v1.1: ordered from suppliers, not yet received
    position: int
    suggested_quantity: int


OUTPUT_MODELS: dict[str, tuple[TopicKind, type[Data]]] = {
    "stock.changed": (TopicKind.STOCK_CHANGED, StockChanged),
    "low-stock.raised": (TopicKind.LOW_STOCK, LowStock),
    "low-stock.changed": (TopicKind.LOW_STOCK, LowStock),
    "low-stock.resolved": (TopicKind.LOW_STOCK, LowStock),
    "oversell.detected": (TopicKind.OVERSELL, OversellDetected),
    **{f"reservation.{s}": (TopicKind.RESERVATIONS, ReservationEvent) for s in (
        "accepted", "rejected", "confirmed", "released", "expired", "fulfilled")},
    "reorder.suggested": (TopicKind.REORDER, ReorderSuggested),
}


# --- the order coordinator's statuses (contract v1.1, Orders) ------------------------------


class PartShare(Data):
    """One part of a line: placed at `warehouse` as the reservation line `line_id` (LINE~k)."""

    warehouse: Name
    line_id: Ident
    quantity: int


class AllocatedLine(Data):
    line_id: Ident
    sku: Name
    quantity: int
    allocations: list[PartShare]


class OrderAllocated(Data):
    """Every line's full quantity is reserved."""

    order_id: Ident
    strategy: Strategy
    lines: list[AllocatedLine]
    cause: Cause


class RejectedLine(Data):
    line_id: Ident
    sku: Name
    requested: int
    allocatable: int = Field(description=(
        "insufficient_stock at the request: what allocation could give the line; otherwise"
        " the units the line held or had in flight when the order ended, plus, for the line"
        " that could not be re-sourced, what re-sourcing could still find"))


class OrderRejected(Data):
    """Nothing of the order stays reserved (sent once every part is released)."""

    order_id: Ident
    reason: Literal["insufficient_stock", "expired", "stock_lost"]
    lines: list[RejectedLine]
    cause: Cause


class OrderReallocated(Data):
    """A part lost after allocation (oversell remediation) was found elsewhere."""

    order_id: Ident
    line_id: Ident
    released: PartShare
    allocations: list[PartShare]
    cause: Cause


class OrderConfirmedStatus(Data):
    """Every live part is confirmed (or fulfilled)."""

    order_id: Ident
    cause: Cause


class OrderCancelledStatus(Data):
    """Every live part is released (or fulfilled)."""

    order_id: Ident
    reason: str | None = Field(default=None, description=(
        "the cancel request's reason; `part_released` or `part_expired` when a release the"
        " coordinator did not ask for ended the order"))
    cause: Cause


STATUS_MODELS: dict[str, tuple[TopicKind, type[Data]]] = {
    "order.allocated": (TopicKind.ORDER_STATUS, OrderAllocated),
    "order.rejected": (TopicKind.ORDER_STATUS, OrderRejected),
    "order.reallocated": (TopicKind.ORDER_STATUS, OrderReallocated),
    "order.confirmed": (TopicKind.ORDER_STATUS, OrderConfirmedStatus),
    "order.cancelled": (TopicKind.ORDER_STATUS, OrderCancelledStatus),
}
