"""What the API answers, as pydantic models: they make the OpenAPI document that clients
(and the schemathesis run in the suite) hold the API to."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["Alert", "Alerts", "FieldError", "Ledger", "Movement", "Order", "OrderLine",
           "OrderPart", "OrderStatusEvent", "Problem", "PurchaseOrder", "PurchaseOrderAtKey",
           "PurchaseOrderLine", "SkuStock", "Stock", "StockAt", "StockPage", "Totals",
           "problems"]

Severity = Literal["ok", "low", "out_of_stock"]


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where: body, query, path or header, then the "
                                             "field's path")
    msg: str
    type: str


class Problem(BaseModel):
    """Every error answer: `detail` says what went wrong, in words."""

    detail: str
    errors: list[FieldError] | None = Field(
        default=None, description="with 422 for an invalid request: each invalid field")


def problems(scope: str) -> dict[int | str, dict[str, Any]]:
    """The error answers every route of a router with this scope may give (one definition:
    the OpenAPI document and the answers agree)."""
    return {
        401: {"model": Problem, "description": "no valid API key"},
        403: {"model": Problem, "description": f"the key lacks the `{scope}` scope"},
        422: {"model": Problem, "description": "invalid request (`errors` lists each field)"},
        429: {"model": Problem, "description": "rate limit exceeded; see Retry-After"},
        503: {"model": Problem, "description": "the database is busy or unreachable; see "
                                               "Retry-After"},
    }


class Totals(BaseModel):
    on_hand: int
    reserved: int
    available: int
    in_transit: int
    damaged: int
    on_order: int = Field(description="ordered from suppliers, not yet received (purchase "
                                      "orders)")


class Stock(Totals):
    key: str = Field(description="SKU@WAREHOUSE")
    sku: str
    warehouse: str
    version: int = Field(description="how many events changed this key; also its ETag")
    reorder_point: int
    safety_stock: int
    severity: Severity
    unit_cost: Decimal | None = Field(
        description="perpetual weighted-average unit cost, a decimal string; null until a "
                    "receipt carries a cost")
    currency: str | None = Field(description="ISO 4217 code the key is valued in")
    updated_at: datetime = Field(description="when the last applied event was recorded")


class StockPage(BaseModel):
    items: list[Stock]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; "
                                                "null on the last")


class SkuStock(BaseModel):
    sku: str
    warehouses: list[Stock]
    totals: Totals


class Movement(BaseModel):
    version: int
    event_id: str
    event_type: str
    reference: str | None
    note: str | None
    on_hand_before: int
    on_hand_after: int
    reserved_before: int
    reserved_after: int
    in_transit_before: int
    in_transit_after: int
    damaged_before: int
    damaged_after: int
    on_order_before: int
    on_order_after: int
    actor: str | None = Field(
        description="who caused it: the cause event's source (`api-key:<name>` for writes "
                    "through this API); null for movements recorded before actors were kept")
    event_time: datetime | None = Field(description="the cause event's own time")
    recorded_at: datetime = Field(description="when the processor applied it")
    value: Decimal | None = Field(
        description="on-hand units moved times their unit cost (negative: out); null when "
                    "no cost is known or on hand did not move")
    unit_cost: Decimal | None = Field(description="the key's average unit cost after it")
    lost: int | None = Field(description="units of demand turned away: a rejected "
                                         "reservation's quantity (lost demand)")


class Ledger(BaseModel):
    key: str
    items: list[Movement]
    next_cursor: str | None


class StockAt(Totals):
    key: str
    time: datetime = Field(description="the instant asked about (business time)")
    version: int = Field(description="the key's version then; 0 before its first event")
    unit_cost: Decimal | None = Field(description="the key's average unit cost then")
    event_time: datetime | None = Field(description="when that version's cause happened")
    recorded_at: datetime | None = Field(description="when that version was recorded")


class OrderLine(BaseModel):
    key: str
    sku: str
    warehouse: str
    line_id: str
    quantity: int
    remaining: int = Field(description="units still reserved")
    status: Literal["pending", "confirmed", "rejected", "released", "expired", "fulfilled"]
    expires_at: datetime | None
    backordered: bool
    updated_at: datetime


class OrderPart(BaseModel):
    line_id: str = Field(description="the reservation line, LINE~k")
    sku: str
    warehouse: str
    quantity: int
    status: Literal["placed", "accepted", "confirmed", "rejected", "released", "expired",
                    "fulfilled"] = Field(description="what the coordinator knows of it")


class OrderStatusEvent(BaseModel):
    type: str = Field(description="order.allocated, order.rejected, ...")
    data: dict[str, Any]
    at: datetime


class Order(BaseModel):
    order_id: str
    lines: list[OrderLine] = Field(description="its reservation lines across keys")
    phase: str | None = Field(default=None, description=(
        "for an order handed over whole: the coordinator's phase (allocating, allocated, "
        "confirming, confirmed, releasing, rejected, cancelled, awaiting)"))
    parts: list[OrderPart] | None = None
    history: list[OrderStatusEvent] | None = Field(default=None, description=(
        "every status the coordinator gave it, oldest first"))


class PurchaseOrderLine(BaseModel):
    line_id: str | None = Field(description="null: placed without a line id")
    ordered: int | None = Field(description="null: known from a cancel or a receipt, not "
                                            "placed yet")
    received: int = Field(description="units receipts naming this line brought")
    cancelled: bool
    expected_at: datetime | None
    open: int = Field(description="still on order: ordered less received (receipts naming "
                                  "no line fill the lines in line-id order); 0 once "
                                  "cancelled")


class PurchaseOrderAtKey(BaseModel):
    key: str
    sku: str
    warehouse: str
    lines: list[PurchaseOrderLine]
    received_unnamed: int = Field(description="units of receipts that named the purchase "
                                              "order but no line")
    cancelled: bool = Field(description="the whole purchase order cancelled at this key")
    on_order: int = Field(description="what the purchase order adds to the key's on_order")
    updated_at: datetime


class PurchaseOrder(BaseModel):
    po_id: str
    keys: list[PurchaseOrderAtKey] = Field(description="every key it was recorded at, by key")
    on_order: int = Field(description="units still on order over all its keys")


class Alert(BaseModel):
    key: str
    sku: str
    warehouse: str
    severity: Literal["low", "out_of_stock"]
    available: int
    reorder_point: int
    updated_at: datetime


class Alerts(BaseModel):
    items: list[Alert]
