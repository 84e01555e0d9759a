"""The bodies of the convenience write routes, derived from the input events they become.

Each body has exactly its event's fields, with their types, limits and descriptions taken
from the event's model (one definition: a field added to an event reaches its route), less
the fields the route fills in itself; a reference the route can make up is optional. A
field the event does not know is refused (422), never dropped: a misspelt `unit_cost`
must not turn into a receipt without a cost. Rules across fields (a cost needs its
currency, a transfer goes elsewhere) are checked by the processor's own parser before
anything is published, as for `POST /v1/events`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from stockflow.domain.inputs import (
    Data,
    PurchaseOrderCancelled,
    PurchaseOrderPlaced,
    ReceiptReceived,
    ShipmentDispatched,
    StockAdjusted,
    StockCounted,
    TransferDispatched,
    TransferReceived,
)
from stockflow.domain.order_inputs import (
    MAX_LINES,
    CancelRequested,
    OrderRequested,
    RequestedLine,
    ShipTo,
)

__all__ = ["MAX_EVENTS", "Adjustment", "Cancel", "Count", "OrderRequest", "PurchaseOrderCancel",
           "PurchaseOrderRequest", "Receipt", "Shipment", "Transfer", "body_of"]

MAX_EVENTS = 1000  # per request: what one Kafka transaction of the API carries at most
_FORBID = ConfigDict(extra="forbid", frozen=True)


def body_of(event: type[Data], name: str, *, filled: frozenset[str] = frozenset(),
            optional: dict[str, str] | None = None,
            **more: Any) -> type[BaseModel]:
    """A body model with `event`'s fields but those in `filled` (the route sets them);
    `optional` fields may be left out, with a description of what the route puts there."""
    fields: dict[str, Any] = {}
    for field, info in event.model_fields.items():
        if field in filled:
            continue
        if field in (optional or {}):
            copied = FieldInfo.merge_field_infos(info, default=None, description=(
                optional or {})[field])
            fields[field] = (info.annotation | None, copied)  # type: ignore[operator]
        else:
            fields[field] = (info.annotation, info)
    return create_model(name, __config__=_FORBID, __doc__=f"The data of {name}.",
                        **fields, **more)


_THE_EVENT_ID = "default: the event id"

if TYPE_CHECKING:  # made at import time: to mypy, each is just a pydantic model
    Receipt: TypeAlias = BaseModel
    Shipment: TypeAlias = BaseModel
    Adjustment: TypeAlias = BaseModel
    Count: TypeAlias = BaseModel
    Transfer: TypeAlias = BaseModel
    OrderRequest: TypeAlias = BaseModel
    Cancel: TypeAlias = BaseModel
    PurchaseOrderRequest: TypeAlias = BaseModel
    PurchaseOrderCancel: TypeAlias = BaseModel
else:
    Receipt = body_of(ReceiptReceived, "Receipt", optional={"receipt_id": _THE_EVENT_ID})
    Shipment = body_of(ShipmentDispatched, "Shipment",
                       optional={"shipment_id": _THE_EVENT_ID})
    Adjustment = body_of(StockAdjusted, "Adjustment",
                         optional={"adjustment_id": _THE_EVENT_ID})
    Count = body_of(StockCounted, "Count", optional={"count_id": _THE_EVENT_ID})
    Transfer = Annotated[
        body_of(TransferDispatched, "TransferDispatched", phase=(
            Literal["dispatched"], Field(description="leaves `warehouse` for `to_warehouse`")))
        | body_of(TransferReceived, "TransferReceived", phase=(
            Literal["received"], Field(description="arrives at `warehouse`"))),
        Field(discriminator="phase")]
    # A whole order for the coordinator: what `order.requested` says of it, its lines and
    # ship_to refusing unknown fields too (a misspelt `warehouse` must not unpin a line).
    OrderRequest = body_of(
        OrderRequested, "OrderRequest", filled=frozenset({"lines", "ship_to"}),
        lines=(list[body_of(RequestedLine, "OrderRequestLine")],  # type: ignore[valid-type]
               Field(min_length=1, max_length=MAX_LINES, description=(
                   f"1 to {MAX_LINES} lines, line ids unique; a line with a `warehouse` is "
                   "pinned there, the others are allocated by `strategy`"))),
        ship_to=(body_of(ShipTo, "ShipTo") | None, Field(  # type: ignore[operator]
            default=None, description="where the order goes: `nearest` needs it, "
            "`fewest_shipments` breaks ties by it")))
    Cancel = body_of(CancelRequested, "Cancel", filled=frozenset({"order_id"}))
    # A purchase order's lines, one purchase-order.placed each (the key is the line's):
    # what the event says of a line, the po_id said once for all of them.
    PurchaseOrderRequest = body_of(
        PurchaseOrderCancelled, "PurchaseOrderRequest",
        filled=frozenset({"sku", "warehouse", "line_id"}),
        lines=(list[body_of(PurchaseOrderPlaced, "PurchaseOrderRequestLine",  # type: ignore[misc]
                            filled=frozenset({"po_id"}))],
               Field(min_length=1, max_length=MAX_EVENTS, description=(
                   f"1 to {MAX_EVENTS:,} lines, each at its key (sku, warehouse); a key's "
                   "line ids unique, and at most one line without an id per key"))))
    PurchaseOrderCancel = body_of(
        PurchaseOrderCancelled, "PurchaseOrderCancel",
        filled=frozenset({"po_id", "sku", "warehouse", "line_id"}),
        lines=(list[body_of(PurchaseOrderCancelled,  # type: ignore[misc]
                            "PurchaseOrderCancelLine", filled=frozenset({"po_id"}))] | None,
               Field(default=None, min_length=1, max_length=MAX_EVENTS, description=(
                   "what to cancel: a line (with `line_id`) or all of the purchase order at "
                   "a key (without); left out, all of it at every key it is recorded at"))))
