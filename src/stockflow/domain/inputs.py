"""The input events the stock rules consume, as pydantic models with the contract's limits.

Every value that reaches Postgres has a bound its column can hold, and every timestamp a
rule computes stays representable (see `EARLIEST`, `LATEST`, `Limits`). Parsing bytes into
these models happens at the edge, in `stockflow.contract.events`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "DEFAULT_LIMITS",
    "EARLIEST",
    "LATEST",
    "MAX_LINE_COUNT",
    "NAME_PATTERN",
    "AtKey",
    "Currency",
    "Data",
    "Event",
    "Ident",
    "InputData",
    "Limits",
    "Name",
    "OversellKind",
    "UnitCost",
    "Whole",
]

# a SKU or a warehouse code (the contract's vocabulary); migration 0013 repeats it
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# Money travels as a decimal string, never a JSON number: a binary float cannot hold 0.10.
_MONEY = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$"
_MONEY_RE = re.compile(_MONEY)

# Every timestamp an event carries must lie in [EARLIEST, LATEST) once converted to UTC.
# The window sits far inside what both Python (years 1-9999) and Postgres can represent, so
# a time plus the reservation TTL (at most a century, see Settings) and any time zone
# conversion on the way to and back from Postgres stay representable.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_LINE_COUNT = 100_000  # lines of one order; the column is an int4


@dataclass(frozen=True, slots=True)
class Limits:
    """The configurable bounds of the edge. Quantities (units that move) and levels
    (counts and thresholds: how many units there are) have bounds of their own; both keep
    every sum the processor forms far inside Postgres' bigint."""

    max_quantity: int = 1_000_000
    max_level: int = 1_000_000_000
    max_bytes: int = 64 * 1024


DEFAULT_LIMITS = Limits()


def _limits(info: ValidationInfo) -> Limits:
    ctx = info.context
    return ctx["limits"] if ctx else DEFAULT_LIMITS


def _out_of_range(kind: str, value: int, low: int, high: int) -> PydanticCustomError:
    digits = len(str(abs(value)))
    shown = value if digits <= 20 else f"a {digits}-digit number"
    return PydanticCustomError(
        kind, "{value} is outside {low}..{high}", {"value": shown, "low": low, "high": high})


def _quantity(value: int, info: ValidationInfo) -> int:
    high = _limits(info).max_quantity
    if not 1 <= value <= high:
        raise _out_of_range("quantity_out_of_range", value, 1, high)
    return value


def _delta(value: int, info: ValidationInfo) -> int:
    high = _limits(info).max_quantity
    if value == 0 or abs(value) > high:
        raise _out_of_range("quantity_out_of_range", value, -high, high)
    return value


def _level(value: int, info: ValidationInfo) -> int:
    high = _limits(info).max_level
    if not 0 <= value <= high:
        raise _out_of_range("level_out_of_range", value, 0, high)
    return value


def _whole(value: object) -> object:
    """JSON Schema, which the published schemas are written in, counts 219.0 as the
    integer 219, so the edge does too; 219.5, "219" and true stay refused."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# an integer field that takes 219.0 too (see `_whole`); strict itself
Whole = BeforeValidator(_whole)
_MAX_Q = DEFAULT_LIMITS.max_quantity
Quantity = Annotated[int, Field(strict=True, json_schema_extra={"minimum": 1, "maximum": _MAX_Q}),
                     AfterValidator(_quantity), Whole]
Level = Annotated[int, Field(strict=True, json_schema_extra={
    "minimum": 0, "maximum": DEFAULT_LIMITS.max_level}), AfterValidator(_level), Whole]
Delta = Annotated[int, Field(strict=True, json_schema_extra={
    "minimum": -_MAX_Q, "maximum": _MAX_Q, "not": {"const": 0}}), AfterValidator(_delta), Whole]
def _not_a_number(value: object) -> object:
    """A time is an RFC 3339 string (or, built in Python, a datetime), never a number: lax
    parsing read 0 as 1970-01-01 (Unix seconds)."""
    if isinstance(value, int | float):
        raise PydanticCustomError("datetime_type", "a time is an RFC 3339 string, not a number")
    return value


# pydantic-core compares in UTC, in Rust: a Python validator cost 2 us an event (measured)
Instant = Annotated[AwareDatetime, Field(ge=EARLIEST, lt=LATEST, json_schema_extra={
    "formatMinimum": EARLIEST.isoformat(), "formatMaximum": LATEST.isoformat(),
    "description": "RFC 3339 with an offset; in UTC at or after formatMinimum and before "
                   "formatMaximum"}), BeforeValidator(_not_a_number)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Note = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _money(value: object) -> Decimal:
    if not isinstance(value, str) or not _MONEY_RE.fullmatch(value):
        raise PydanticCustomError(
            "money", "a decimal string of at most 12 digits, a point and 6 decimals, "
            "like \"12.50\"")
    return Decimal(value)


UnitCost = Annotated[Decimal, PlainValidator(_money), WithJsonSchema({
    "type": "string", "pattern": _MONEY,
    "description": "a decimal string >= 0 (at most 12 digits, a point and 6 decimals)"})]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(
    description="an ISO 4217 alphabetic code, e.g. EUR")]


class Data(BaseModel):
    """Event data: frozen, and unknown fields are ignored for forward compatibility."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class AtKey(Data):
    sku: Name
    warehouse: Name


class _MaybeAtKey(Data):
    """Data that may omit the key's parts: they then come from the Kafka key."""

    sku: Name | None = None
    warehouse: Name | None = None


# --- inputs --------------------------------------------------------------------------


class OrderPlaced(AtKey):
    order_id: Ident
    line_id: Ident
    quantity: Quantity
    expires_at: Instant | None = None
    allow_backorder: StrictBool = False
    line_count: Annotated[int, Field(strict=True, ge=1, le=MAX_LINE_COUNT), Whole] | None = None


class OrderConfirmed(_MaybeAtKey):
    order_id: Ident
    line_id: Ident | None = None


class OrderCancelled(_MaybeAtKey):
    order_id: Ident
    line_id: Ident | None = None
    reason: Note | None = None


class ReservationExpired(_MaybeAtKey):
    order_id: Ident
    line_id: Ident


class ShipmentDispatched(AtKey):
    shipment_id: Ident
    line_id: Ident | None = None
    quantity: Quantity
    order_id: Ident | None = None


class TransferDispatched(AtKey):
    transfer_id: Ident
    to_warehouse: Name
    quantity: Quantity

    @model_validator(mode="after")
    def _elsewhere(self) -> TransferDispatched:
        if self.to_warehouse == self.warehouse:
            raise ValueError("to_warehouse must differ from warehouse")
        return self


class TransferIncoming(AtKey):
    transfer_id: Ident
    from_warehouse: Name
    quantity: Quantity


class TransferReceived(AtKey):
    transfer_id: Ident
    quantity: Quantity


class ReceiptReceived(AtKey):
    receipt_id: Ident
    line_id: Ident | None = None
    quantity: Quantity
    po_id: Ident | None = None
    unit_cost: UnitCost | None = None  # with currency: what one unit cost
    currency: Currency | None = None

    @model_validator(mode="after")
    def _costed(self) -> ReceiptReceived:
        if (self.unit_cost is None) != (self.currency is None):
            raise ValueError("unit_cost and currency come together")
        return self


class PurchaseOrderPlaced(AtKey):
    """Units ordered from a supplier for this key (contract v1.1, Purchase orders)."""

    po_id: Ident
    line_id: Ident | None = None
    quantity: Quantity
    expected_at: Instant | None = None


class PurchaseOrderCancelled(AtKey):
    """What is still open of a purchase order's line at this key, or of all its lines."""

    po_id: Ident
    line_id: Ident | None = None


class ReturnReceived(AtKey):
    return_id: Ident
    line_id: Ident | None = None
    quantity: Quantity
    condition: Literal["resellable", "damaged"]


class StockAdjusted(AtKey):
    adjustment_id: Ident
    delta: Delta
    reason: Note


class StockCounted(AtKey):
    count_id: Ident
    on_hand: Level


class StockDamaged(AtKey):
    damage_id: Ident
    quantity: Quantity


class ThresholdsSet(AtKey):
    reorder_point: Level
    safety_stock: Level


InputData = (
    OrderPlaced | OrderConfirmed | OrderCancelled | ReservationExpired | ShipmentDispatched
    | TransferDispatched | TransferIncoming | TransferReceived | ReceiptReceived
    | PurchaseOrderPlaced | PurchaseOrderCancelled | ReturnReceived | StockAdjusted
    | StockCounted | StockDamaged | ThresholdsSet
)


OversellKind = Literal["backordered", "reservation_rejected", "shipment_exceeds_on_hand"]


class Event(NamedTuple):
    """A validated input event for one key; what the stock rules consume."""

    id: str
    type: str
    time: datetime
    sku: str
    warehouse: str
    data: InputData
    key: str  # SKU@WAREHOUSE, kept rather than derived: it is read many times per event
    source: str = ""  # the CloudEvents source: who sent it (the ledger's actor)

