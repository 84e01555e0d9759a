"""The contract's events as pydantic models: the CloudEvents envelope, every input and output.

Inputs are parsed here, at the edge: bytes become a typed `Event`, or a `Rejection` that
names one of the contract's DLQ reason codes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "DEFAULT_MAX_QUANTITY",
    "INPUT_MODELS",
    "OUTPUT_MODELS",
    "Event",
    "Reason",
    "Rejection",
    "TopicKind",
    "parse",
    "split_key",
]

DEFAULT_MAX_QUANTITY = 1_000_000
_NAME = r"^[A-Za-z0-9._-]{1,64}$"


class TopicKind(StrEnum):
    """The contract's topics by role; `topics.Topics` maps them to names."""

    ORDERS = "orders"
    SHIPMENTS = "shipments"
    RECEIPTS = "receipts"
    ADJUSTMENTS = "adjustments"
    STOCK_CHANGED = "stock-changed"
    LOW_STOCK = "low-stock"
    OVERSELL = "oversell"
    RESERVATIONS = "reservations"
    DLQ = "dlq"


class Reason(StrEnum):
    """DLQ reason codes, as sent in the `stockflow.error.reason` header."""

    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_TOPIC = "wrong_topic"
    SCHEMA_VIOLATION = "schema_violation"
    KEY_MISMATCH = "key_mismatch"
    QUANTITY_OUT_OF_RANGE = "quantity_out_of_range"
    NEGATIVE_RESULT = "negative_result"
    OVERSIZED = "oversized"


def _limit(info: ValidationInfo) -> int:
    ctx = info.context
    return int(ctx["max_quantity"]) if ctx and "max_quantity" in ctx else DEFAULT_MAX_QUANTITY


def _out_of_range(value: int, low: int, high: int) -> PydanticCustomError:
    return PydanticCustomError(
        "quantity_out_of_range", "{value} is outside {low}..{high}",
        {"value": value, "low": low, "high": high},
    )


def _quantity(value: int, info: ValidationInfo) -> int:
    if not 1 <= value <= _limit(info):
        raise _out_of_range(value, 1, _limit(info))
    return value


def _level(value: int, info: ValidationInfo) -> int:
    if not 0 <= value <= _limit(info):
        raise _out_of_range(value, 0, _limit(info))
    return value


def _delta(value: int, info: ValidationInfo) -> int:
    if value == 0 or abs(value) > _limit(info):
        raise _out_of_range(value, -_limit(info), _limit(info))
    return value


_RANGE = {"maximum": DEFAULT_MAX_QUANTITY}
Quantity = Annotated[int, Field(strict=True, json_schema_extra={"minimum": 1, **_RANGE}),
                     AfterValidator(_quantity)]
Level = Annotated[int, Field(strict=True, json_schema_extra={"minimum": 0, **_RANGE}),
                  AfterValidator(_level)]
Delta = Annotated[int, Field(strict=True, json_schema_extra={
    "minimum": -DEFAULT_MAX_QUANTITY, **_RANGE, "not": {"const": 0}}), AfterValidator(_delta)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Name = Annotated[str, StringConstraints(pattern=_NAME)]


class _Data(BaseModel):
    """Event data: frozen, and unknown fields are ignored for forward compatibility."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class _AtKey(_Data):
    sku: Name
    warehouse: Name


class _MaybeAtKey(_Data):
    """Data that may omit the key's parts: they then come from the Kafka key."""

    sku: Name | None = None
    warehouse: Name | None = None


# --- inputs --------------------------------------------------------------------------


class OrderPlaced(_AtKey):
    order_id: Ident
    line_id: Ident
    quantity: Quantity
    expires_at: AwareDatetime | None = None
    allow_backorder: bool = False
    line_count: Annotated[int, Field(strict=True, ge=1)] | None = None


class OrderConfirmed(_MaybeAtKey):
    order_id: Ident
    line_id: Ident | None = None


class OrderCancelled(_MaybeAtKey):
    order_id: Ident
    line_id: Ident | None = None
    reason: str | None = None


class ReservationExpired(_MaybeAtKey):
    order_id: Ident
    line_id: Ident


class ShipmentDispatched(_AtKey):
    shipment_id: Ident
    line_id: Ident | None = None
    quantity: Quantity
    order_id: Ident | None = None


class TransferDispatched(_AtKey):
    transfer_id: Ident
    to_warehouse: Name
    quantity: Quantity

    @model_validator(mode="after")
    def _elsewhere(self) -> TransferDispatched:
        if self.to_warehouse == self.warehouse:
            raise ValueError("to_warehouse must differ from warehouse")
        return self


class TransferIncoming(_AtKey):
    transfer_id: Ident
    from_warehouse: Name
    quantity: Quantity


class TransferReceived(_AtKey):
    transfer_id: Ident
    quantity: Quantity


class ReceiptReceived(_AtKey):
    receipt_id: Ident
    line_id: Ident | None = None
    quantity: Quantity
    po_id: Ident | None = None


class ReturnReceived(_AtKey):
    return_id: Ident
    line_id: Ident | None = None
    quantity: Quantity
    condition: Literal["resellable", "damaged"]


class StockAdjusted(_AtKey):
    adjustment_id: Ident
    delta: Delta
    reason: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class StockCounted(_AtKey):
    count_id: Ident
    on_hand: Level


class StockDamaged(_AtKey):
    damage_id: Ident
    quantity: Quantity


class ThresholdsSet(_AtKey):
    reorder_point: Level
    safety_stock: Level


InputData = (
    OrderPlaced | OrderConfirmed | OrderCancelled | ReservationExpired | ShipmentDispatched
    | TransferDispatched | TransferIncoming | TransferReceived | ReceiptReceived
    | ReturnReceived | StockAdjusted | StockCounted | StockDamaged | ThresholdsSet
)

INPUT_MODELS: dict[str, tuple[TopicKind, type[_Data]]] = {
    "order.placed": (TopicKind.ORDERS, OrderPlaced),
    "order.confirmed": (TopicKind.ORDERS, OrderConfirmed),
    "order.cancelled": (TopicKind.ORDERS, OrderCancelled),
    "reservation.expired": (TopicKind.ORDERS, ReservationExpired),
    "shipment.dispatched": (TopicKind.SHIPMENTS, ShipmentDispatched),
    "transfer.dispatched": (TopicKind.SHIPMENTS, TransferDispatched),
    "receipt.received": (TopicKind.RECEIPTS, ReceiptReceived),
    "return.received": (TopicKind.RECEIPTS, ReturnReceived),
    "transfer.incoming": (TopicKind.RECEIPTS, TransferIncoming),
    "transfer.received": (TopicKind.RECEIPTS, TransferReceived),
    "stock.adjusted": (TopicKind.ADJUSTMENTS, StockAdjusted),
    "stock.counted": (TopicKind.ADJUSTMENTS, StockCounted),
    "stock.damaged": (TopicKind.ADJUSTMENTS, StockDamaged),
    "stock.thresholds-set": (TopicKind.ADJUSTMENTS, ThresholdsSet),
}


# --- outputs -------------------------------------------------------------------------


class Cause(_Data):
    event_id: Ident
    type: str


class Deltas(_Data):
    on_hand: int
    reserved: int
    in_transit: int
    damaged: int


class StockChanged(_AtKey):
    on_hand: int
    reserved: int
    available: int
    in_transit: int
    damaged: int
    version: int
    delta: Deltas
    cause: Cause


Severity = Literal["ok", "low", "out_of_stock"]


class LowStock(_AtKey):
    severity: Severity
    available: int
    reorder_point: int
    safety_stock: int
    cause: Cause


OversellKind = Literal["backordered", "reservation_rejected", "shipment_exceeds_on_hand"]


class OversellDetected(_AtKey):
    kind: OversellKind
    requested: int
    available_before: int
    shortfall: int
    order_id: str | None = None
    line_id: str | None = None
    shipment_id: str | None = None
    transfer_id: str | None = None
    cause: Cause


class ReservationEvent(_AtKey):
    order_id: Ident
    line_id: Ident
    quantity: int
    backordered: bool | None = None
    line_count: int | None = None
    reason: str | None = None
    cause: Cause


OUTPUT_MODELS: dict[str, tuple[TopicKind, type[_Data]]] = {
    "stock.changed": (TopicKind.STOCK_CHANGED, StockChanged),
    "low-stock.raised": (TopicKind.LOW_STOCK, LowStock),
    "low-stock.changed": (TopicKind.LOW_STOCK, LowStock),
    "low-stock.resolved": (TopicKind.LOW_STOCK, LowStock),
    "oversell.detected": (TopicKind.OVERSELL, OversellDetected),
    **{f"reservation.{s}": (TopicKind.RESERVATIONS, ReservationEvent) for s in (
        "accepted", "rejected", "confirmed", "released", "expired", "fulfilled")},
}


# --- the envelope and parsing --------------------------------------------------------


class Event(NamedTuple):
    """A validated input event for one key; what the stock rules consume."""

    id: str
    type: str
    time: datetime
    sku: str
    warehouse: str
    data: InputData
    key: str  # SKU@WAREHOUSE, kept rather than derived: it is read many times per event


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    message: str
    event_id: str | None = None
    event_type: str | None = None


_KEY = re.compile(r"([A-Za-z0-9._-]{1,64})@([A-Za-z0-9._-]{1,64})")


def split_key(key: str) -> tuple[str, str] | None:
    """`SKU@WAREHOUSE` into its parts, or None when it is not a valid key."""
    m = _KEY.fullmatch(key)
    return (m[1], m[2]) if m else None


def _errors(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
             for e in exc.errors()[:3]]
    more = exc.error_count() - 3
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class _EnvelopeBase(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode; extension attributes are kept."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"]
    id: Ident
    source: Annotated[str, StringConstraints(min_length=1)]
    time: AwareDatetime
    subject: str | None = None
    datacontenttype: str | None = None


def _typed_envelope(type_: str, data: type[_Data]) -> type[_EnvelopeBase]:
    name = "Envelope_" + type_.replace(".", "_").replace("-", "_")
    tag: Any = Literal[type_]
    return create_model(name, __base__=_EnvelopeBase, type=(tag, ...), data=(data, ...))


# One validation pass from bytes to a typed envelope, dispatched on `type` in Rust.
_INPUT: TypeAdapter[Any] = TypeAdapter(Annotated[  # type: ignore[arg-type]
    Union[tuple(_typed_envelope(t, m) for t, (_, m) in INPUT_MODELS.items())],  # noqa: UP007
    Field(discriminator="type")])
_VALIDATE_JSON = _INPUT.validator.validate_json  # without TypeAdapter's per-call wrapper
_ENVELOPE_SHAPE = {"missing", "model_type", "model_attributes_type", "dict_type"}


def parse(
    topic: TopicKind, key: bytes | None, value: bytes | None,
    *, max_quantity: int = DEFAULT_MAX_QUANTITY, max_bytes: int = 64 * 1024,
) -> Event | Rejection:
    """Validate one consumed message against the contract. Reasons are checked in this
    order: oversized, invalid_json, invalid_envelope, unknown_type, wrong_topic,
    schema_violation / quantity_out_of_range, key_mismatch; a NUL in any string (which
    Postgres cannot store) is an invalid_envelope or schema_violation found after
    wrong_topic."""
    raw = value or b""
    if len(raw) > max_bytes:
        return Rejection(Reason.OVERSIZED, f"message is {len(raw)} bytes, limit {max_bytes}")
    try:
        env: Any = _VALIDATE_JSON(raw, context={"max_quantity": max_quantity})
    except ValidationError as exc:
        return _rejected(topic, raw, exc)
    home = INPUT_MODELS[env.type][0]
    ident = (env.id, env.type)
    if home is not topic:
        return Rejection(Reason.WRONG_TOPIC,
                         f"{env.type} belongs on {home.value}, not {topic.value}", *ident)
    if b"\\u0000" in raw and (nul := _nul_in(raw)) is not None:
        return Rejection(nul, "a string holds U+0000 (NUL), which Postgres text cannot store",
                         *ident)
    parts = _key_parts(key) if key is not None else None
    if parts is None:
        return Rejection(Reason.KEY_MISMATCH, f"Kafka key {key!r} is not SKU@WAREHOUSE", *ident)
    sku, warehouse, text = parts
    data = env.data
    if (data.sku is not None or data.warehouse is not None) and (
            data.sku != sku or data.warehouse != warehouse):
        return Rejection(Reason.KEY_MISMATCH,
                         f"Kafka key {key!r} is not the data's {data.sku}@{data.warehouse}",
                         *ident)
    if env.subject is not None and env.subject != text:
        return Rejection(Reason.KEY_MISMATCH,
                         f"subject {env.subject!r} is not the Kafka key {key!r}", *ident)
    return Event(env.id, env.type, env.time, sku, warehouse, data, text)


# Valid Kafka keys seen, as (sku, warehouse, key): a processor sees the same few thousand
# keys again and again, and decoding and matching each one cost more than the lookup.
_KEYS: dict[bytes, tuple[str, str, str]] = {}


def _key_parts(key: bytes) -> tuple[str, str, str] | None:
    found = _KEYS.get(key)
    if found is None:
        parts = split_key(key.decode("utf-8", "replace"))
        if parts is None:
            return None
        if len(_KEYS) >= 100_000:
            _KEYS.clear()
        found = _KEYS[key] = (parts[0], parts[1], f"{parts[0]}@{parts[1]}")
    return found


def _rejected(topic: TopicKind, raw: bytes, exc: ValidationError) -> Rejection:
    """Which contract reason a failed validation means."""
    errors = exc.errors()
    kinds = {e["type"] for e in errors}
    ident = _id_type(raw)
    if "json_invalid" in kinds:
        return Rejection(Reason.INVALID_JSON, f"not JSON: {_errors(exc)}")
    if "union_tag_invalid" in kinds:
        return Rejection(Reason.UNKNOWN_TYPE, f"unknown event type {ident[1]!r}", *ident)
    in_data = [e for e in errors if len(e["loc"]) >= 2 and e["loc"][1] == "data"
               and not (len(e["loc"]) == 2 and e["type"] in _ENVELOPE_SHAPE)]
    if len(in_data) < len(errors):
        return Rejection(Reason.INVALID_ENVELOPE, _errors(exc), *ident)
    type_ = str(errors[0]["loc"][0])
    home = INPUT_MODELS[type_][0]
    if home is not topic:
        return Rejection(Reason.WRONG_TOPIC, f"{type_} belongs on {home.value}, not "
                         f"{topic.value}", *ident)
    ranged = "quantity_out_of_range" in kinds
    reason = Reason.QUANTITY_OUT_OF_RANGE if ranged else Reason.SCHEMA_VIOLATION
    return Rejection(reason, _errors(exc), *ident)


def _nul_in(raw: bytes) -> Reason | None:
    """Where a valid envelope carries NUL in a string: in its data (schema_violation) or in
    the envelope itself (invalid_envelope). Stored, it would fail the batch's transaction
    on every retry. Called only when the JSON spells \\u0000 (which may be an escaped
    backslash followed by "u0000", so look at the decoded strings)."""

    def has(value: Any) -> bool:
        if isinstance(value, str):
            return "\x00" in value
        if isinstance(value, dict):
            return any(has(k) or has(v) for k, v in value.items())
        if isinstance(value, list):
            return any(has(v) for v in value)
        return False

    doc = json.loads(raw)
    if has(doc.get("data")):
        return Reason.SCHEMA_VIOLATION
    return Reason.INVALID_ENVELOPE if has({k: v for k, v in doc.items() if k != "data"}) else None


def _id_type(raw: bytes) -> tuple[str | None, str | None]:
    """Best-effort id and type of an invalid envelope, for the DLQ message and metrics."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    ident, kind = doc.get("id"), doc.get("type")
    return (ident if isinstance(ident, str) else None, kind if isinstance(kind, str) else None)
