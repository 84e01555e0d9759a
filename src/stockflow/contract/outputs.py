"""The contract's output events: what stockflow emits, as pydantic models. The rules build
their payloads as plain dicts of these shapes (a unit test validates every one)."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from stockflow.contract.topics import TopicKind
from stockflow.domain.inputs import AtKey, Data, Ident, OversellKind
from stockflow.domain.state import Severity

__all__ = ["OUTPUT_MODELS", "Cause", "LowStock", "OversellDetected", "ReorderSuggested",
           "ReservationEvent", "StockChanged"]



class Cause(Data):
    event_id: Ident
    type: str


class Deltas(Data):
    on_hand: int
    reserved: int
    in_transit: int
    damaged: int


class StockChanged(AtKey):
    on_hand: int
    reserved: int
    available: int
    in_transit: int
    damaged: int
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
    when the key's inventory position (available + in transit) is at or under its reorder
    point, order `suggested_quantity` to bring it up to `order_up_to`."""

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


