"""The edge: every consumed message becomes a typed `Event` (see `stockflow.domain.inputs`)
or a `Rejection` naming one of the contract's DLQ reason codes; parsing never raises. Also
the CloudEvents envelope stockflow writes itself (`envelope`).

The order coordinator's topics (order requests, and the reservation events it reads back)
have their own entry point, `parse_order_input`, giving an `OrderInput`: `parse` stays the
stock processor's, with its type and without a single extra step per message.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_core import from_json

from stockflow.contract.topics import COORDINATOR_INPUTS, TopicKind
from stockflow.domain.inputs import (
    DEFAULT_LIMITS,
    Data,
    Event,
    Ident,
    Instant,
    Limits,
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
from stockflow.domain.order_inputs import (
    Accepted,
    CancelRequested,
    Confirmed,
    ConfirmRequested,
    Expired,
    Fulfilled,
    OrderExpired,
    OrderInput,
    OrderRequested,
    Rejected,
    Released,
)

__all__ = ["INPUT_MODELS", "ORDER_INPUT_MODELS", "Reason", "Rejection", "envelope", "parse",
           "parse_order_input", "split_key"]


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
    CURRENCY_MISMATCH = "currency_mismatch"  # a receipt costed in another currency than its key
    OVERSIZED = "oversized"
    PROCESSING_ERROR = "processing_error"  # valid, but deciding or writing it failed
    CONFLICT = "conflict"  # another order.requested body under a known order_id


INPUT_MODELS: dict[str, tuple[TopicKind, type[Data]]] = {
    "order.placed": (TopicKind.ORDERS, OrderPlaced),
    "order.confirmed": (TopicKind.ORDERS, OrderConfirmed),
    "order.cancelled": (TopicKind.ORDERS, OrderCancelled),
    "reservation.expired": (TopicKind.ORDERS, ReservationExpired),
    "shipment.dispatched": (TopicKind.SHIPMENTS, ShipmentDispatched),
    "transfer.dispatched": (TopicKind.SHIPMENTS, TransferDispatched),
    "receipt.received": (TopicKind.RECEIPTS, ReceiptReceived),
    "return.received": (TopicKind.RECEIPTS, ReturnReceived),
    "purchase-order.placed": (TopicKind.RECEIPTS, PurchaseOrderPlaced),
    "purchase-order.cancelled": (TopicKind.RECEIPTS, PurchaseOrderCancelled),
    "transfer.incoming": (TopicKind.RECEIPTS, TransferIncoming),
    "transfer.received": (TopicKind.RECEIPTS, TransferReceived),
    "stock.adjusted": (TopicKind.ADJUSTMENTS, StockAdjusted),
    "stock.counted": (TopicKind.ADJUSTMENTS, StockCounted),
    "stock.damaged": (TopicKind.ADJUSTMENTS, StockDamaged),
    "stock.thresholds-set": (TopicKind.ADJUSTMENTS, ThresholdsSet),
}

# The order coordinator's inputs: order requests, and the stock processor's reservation
# events (its outputs) about the parts the coordinator placed. Both topics are keyed by
# order_id. (reservation.expired is also a stock input, on the orders topic, written by
# the processor's sweeper; here it is the processor's report of that expiry.)
ORDER_INPUT_MODELS: dict[str, tuple[TopicKind, type[Data]]] = {
    "order.requested": (TopicKind.ORDER_REQUESTS, OrderRequested),
    "order.confirm-requested": (TopicKind.ORDER_REQUESTS, ConfirmRequested),
    "order.cancel-requested": (TopicKind.ORDER_REQUESTS, CancelRequested),
    "order.expired": (TopicKind.ORDER_REQUESTS, OrderExpired),
    "reservation.accepted": (TopicKind.RESERVATIONS, Accepted),
    "reservation.rejected": (TopicKind.RESERVATIONS, Rejected),
    "reservation.confirmed": (TopicKind.RESERVATIONS, Confirmed),
    "reservation.released": (TopicKind.RESERVATIONS, Released),
    "reservation.expired": (TopicKind.RESERVATIONS, Expired),
    "reservation.fulfilled": (TopicKind.RESERVATIONS, Fulfilled),
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message is not an event: its reason and message, and its id and type when they
    could be read."""

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
    time: Instant
    subject: str | None = None
    datacontenttype: str | None = None


def _typed_envelope(type_: str, data: type[Data]) -> type[_EnvelopeBase]:
    name = "Envelope_" + type_.replace(".", "_").replace("-", "_")
    tag: Any = Literal[type_]
    return create_model(name, __base__=_EnvelopeBase, type=(tag, ...), data=(data, ...))


# One validation pass from bytes to a typed envelope, dispatched on `type` in Rust.
_INPUT: TypeAdapter[Any] = TypeAdapter(Annotated[  # type: ignore[arg-type]
    Union[tuple(_typed_envelope(t, m) for t, (_, m) in INPUT_MODELS.items())],  # noqa: UP007
    Field(discriminator="type")])
_VALIDATE_JSON = _INPUT.validator.validate_json  # without TypeAdapter's per-call wrapper
_ORDER_INPUT: TypeAdapter[Any] = TypeAdapter(Annotated[  # type: ignore[arg-type]
    Union[tuple(_typed_envelope(t, m) for t, (_, m) in ORDER_INPUT_MODELS.items())],  # noqa: UP007
    Field(discriminator="type")])
_ENVELOPE_SHAPE = {"missing", "model_type", "model_attributes_type", "dict_type"}


def parse(
    topic: TopicKind, key: bytes | None, value: bytes | None, limits: Limits = DEFAULT_LIMITS,
) -> Event | Rejection:
    """Validate one consumed message against the contract; never raises. Reasons are
    checked in this order: oversized, invalid_json, invalid_envelope, unknown_type,
    wrong_topic, schema_violation / quantity_out_of_range, key_mismatch; a NUL in any string
    (which Postgres cannot store) is an invalid_envelope or schema_violation found after
    wrong_topic. An input that breaks the parser itself is a processing_error."""
    try:
        return _parse(topic, key, value or b"", limits)
    except Exception as exc:  # noqa: BLE001 - the edge turns any failure into a rejection
        return Rejection(Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"[:1000])


def _envelope(
    topic: TopicKind, raw: bytes, limits: Limits, validate: Callable[..., Any],
    models: Mapping[str, tuple[TopicKind, type[Data]]],
) -> Any:
    """The checks every consumer's edge makes before its own, in order: size, the envelope
    and data against `models`, the topic the type belongs on, NUL in a string. The typed
    envelope, or the Rejection."""
    if len(raw) > limits.max_bytes:
        return Rejection(Reason.OVERSIZED, f"message is {len(raw)} bytes, limit {limits.max_bytes}")
    try:
        env: Any = validate(raw, context={"limits": limits})
    except ValidationError as exc:
        return _rejected(topic, raw, exc, models)
    home = models[env.type][0]
    if home is not topic:
        return Rejection(Reason.WRONG_TOPIC, f"{env.type} belongs on {home.value}, not "
                         f"{topic.value}", env.id, env.type)
    if b"\\u0000" in raw and (nul := _nul_in(raw)) is not None:
        return Rejection(nul, "a string holds U+0000 (NUL), which Postgres text cannot store",
                         env.id, env.type)
    return env


def _parse(topic: TopicKind, key: bytes | None, raw: bytes, limits: Limits) -> Event | Rejection:
    env = _envelope(topic, raw, limits, _VALIDATE_JSON, INPUT_MODELS)
    if isinstance(env, Rejection):
        return env
    ident = (env.id, env.type)
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
    return Event(env.id, env.type, env.time, sku, warehouse, data, text, env.source)


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


def parse_order_input(
    topic: TopicKind, key: bytes | None, value: bytes | None, limits: Limits = DEFAULT_LIMITS,
) -> OrderInput | Rejection:
    """`parse` for the order coordinator's topics (`COORDINATOR_INPUTS`): the same checks in
    the same order, but the Kafka key (and the subject, when given) must be the data's
    `order_id`. Never raises for a message; a topic the coordinator does not read is the
    caller's mistake (ValueError)."""
    if topic not in COORDINATOR_INPUTS:
        raise ValueError(f"{topic.value} is not a topic of the order coordinator")
    try:
        return _parse_order(topic, key, value or b"", limits)
    except Exception as exc:  # noqa: BLE001 - the edge turns any failure into a rejection
        return Rejection(Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"[:1000])


def _parse_order(
    topic: TopicKind, key: bytes | None, raw: bytes, limits: Limits,
) -> OrderInput | Rejection:
    env = _envelope(topic, raw, limits, _ORDER_INPUT.validator.validate_json,
                    ORDER_INPUT_MODELS)
    if isinstance(env, Rejection):
        return env
    ident = (env.id, env.type)
    order_id = env.data.order_id
    text = key.decode("utf-8", "replace") if key is not None else None
    if text != order_id:
        return Rejection(Reason.KEY_MISMATCH,
                         f"Kafka key {key!r} is not the data's order_id {order_id!r}", *ident)
    if env.subject is not None and env.subject != order_id:
        return Rejection(Reason.KEY_MISMATCH,
                         f"subject {env.subject!r} is not the order_id {order_id!r}", *ident)
    return OrderInput(env.id, env.type, env.time, env.data, order_id, env.source)


# Where each type of either consumer belongs, to tell a misrouted event from an unknown one
# (reservation.expired belongs on two topics: the sweeper's input and the processor's report)
_ANY_HOME: dict[str, tuple[TopicKind, ...]] = {
    type_: tuple(kind for table in (INPUT_MODELS, ORDER_INPUT_MODELS)
                 for t, (kind, _) in table.items() if t == type_)
    for type_ in (*INPUT_MODELS, *ORDER_INPUT_MODELS)}


def _rejected(
    topic: TopicKind, raw: bytes, exc: ValidationError,
    models: Mapping[str, tuple[TopicKind, type[Data]]],
) -> Rejection:
    """Which contract reason a failed validation against `models` means."""
    errors = exc.errors()
    kinds = {e["type"] for e in errors}
    if "json_invalid" in kinds:
        return Rejection(Reason.INVALID_JSON, f"not JSON: {_errors(exc)}")
    ident = _id_type(raw)
    if "union_tag_invalid" in kinds:
        # a type of the contract's other consumer: known, but not on this topic
        elsewhere = _ANY_HOME.get(ident[1] or "", ())
        if elsewhere and topic not in elsewhere:
            return Rejection(Reason.WRONG_TOPIC, f"{ident[1]} belongs on "
                             f"{' or '.join(k.value for k in elsewhere)}, not {topic.value}",
                             *ident)
        return Rejection(Reason.UNKNOWN_TYPE, f"unknown event type {ident[1]!r}", *ident)
    in_data = [e for e in errors if len(e["loc"]) >= 2 and e["loc"][1] == "data"
               and not (len(e["loc"]) == 2 and e["type"] in _ENVELOPE_SHAPE)]
    if len(in_data) < len(errors):
        return Rejection(Reason.INVALID_ENVELOPE, _errors(exc), *ident)
    type_ = str(errors[0]["loc"][0])
    home = models[type_][0]
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
    doc = from_json(raw)
    if any("\x00" in s for s in _strings(doc.get("data"))):
        return Reason.SCHEMA_VIOLATION
    rest = {k: v for k, v in doc.items() if k != "data"}
    return Reason.INVALID_ENVELOPE if any("\x00" in s for s in _strings(rest)) else None


def _strings(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON value, keys included, without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _id_type(raw: bytes) -> tuple[str | None, str | None]:
    """Best-effort id and type of an invalid envelope, for the DLQ message and metrics."""
    try:
        doc = from_json(raw)
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    ident, kind = doc.get("id"), doc.get("type")
    return (ident if isinstance(ident, str) else None, kind if isinstance(kind, str) else None)


def envelope(type_: str, data: Mapping[str, Any], *, id_: str | None = None,
             time: datetime | None = None, source: str = "stockflow-publisher") -> dict[str, Any]:
    """A CloudEvents 1.0 structured-mode event."""
    return {"specversion": "1.0", "id": id_ or str(uuid.uuid4()), "source": source,
            "type": type_, "time": (time or datetime.now(UTC)).isoformat(),
            "datacontenttype": "application/json", "data": dict(data)}
