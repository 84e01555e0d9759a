"""What the order coordinator consumes (contract v1.1, Orders), as pydantic models with the
contract's limits, in the conventions of `stockflow.domain.inputs`: names as patterns,
quantities bounded by `Limits`, times that are RFC 3339 strings (never numbers), unknown
fields ignored. Parsing bytes into them happens at the edge (`contract.events`).

Two topics feed the coordinator, both keyed by `order_id`: `inventory.order-requests`
(`OrderRequested`, `ConfirmRequested`, `CancelRequested`, `OrderExpired`) and
`inventory.reservations`, where the stock processor says what became of each part the
coordinator placed (`ReservationReport` and its six kinds).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from stockflow.domain.allocation import Strategy
from stockflow.domain.inputs import Data, Ident, Instant, Name, Quantity, Whole

__all__ = [
    "MAX_LINES",
    "PART_SEPARATOR",
    "Accepted",
    "CancelRequested",
    "ConfirmRequested",
    "Confirmed",
    "Expired",
    "Fulfilled",
    "OrderData",
    "OrderExpired",
    "OrderInput",
    "OrderRequested",
    "Rejected",
    "Released",
    "RequestedLine",
    "ReservationReport",
    "ShipTo",
    "fingerprint",
]

MAX_LINES = 100
# A part's line id is `LINE~k`: the coordinator's own, so a requested line id holds no `~`.
# At most 120 characters, so that `~` and k (up to 7 digits) stay within the 128 an
# order.placed line id may have.
PART_SEPARATOR = "~"


def _no_separator(line_id: str) -> str:
    if PART_SEPARATOR in line_id:
        raise ValueError(f"a line_id holds no {PART_SEPARATOR!r}: the coordinator names a "
                         f"line's parts LINE{PART_SEPARATOR}k")
    return line_id


LineId = Annotated[str, StringConstraints(min_length=1, max_length=120),
                   AfterValidator(_no_separator), Field(json_schema_extra={"pattern": "^[^~]*$"})]
Note = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Degrees = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # a JSON number


class ShipTo(Data):
    lat: Annotated[Degrees, Field(ge=-90, le=90)]
    lon: Annotated[Degrees, Field(ge=-180, le=180)]


class RequestedLine(Data):
    line_id: LineId = Field(description=(
        "unique within the order; no `~` (the coordinator names the line's parts `LINE~k`),"
        " at most 120 characters"))
    sku: Name
    quantity: Quantity
    warehouse: Name | None = Field(default=None, description="pinned: served there only")


class OrderRequested(Data):
    order_id: Ident
    # counted in `_lines` rather than by min_length/max_length, whose message on a list
    # with a bad line would also count the lines "after validation"
    lines: tuple[RequestedLine, ...] = Field(
        json_schema_extra={"minItems": 1, "maxItems": MAX_LINES, "description": (
            f"1 to {MAX_LINES} lines, line ids unique")})
    strategy: Strategy = Field(default="priority", description=(
        "how unpinned lines are allocated; `nearest` needs ship_to"))
    ship_to: ShipTo | None = None
    expires_at: Instant | None = Field(default=None, description=(
        "the order's deadline, and its parts' expires_at; default: when requested plus the"
        " reservation TTL"))

    @field_validator("lines")
    @classmethod
    def _lines(cls, lines: tuple[RequestedLine, ...]) -> tuple[RequestedLine, ...]:
        if not 1 <= len(lines) <= MAX_LINES:
            raise ValueError(f"an order has 1 to {MAX_LINES} lines, not {len(lines)}")
        seen: set[str] = set()
        for line in lines:
            if line.line_id in seen:
                raise ValueError(f"line_id {line.line_id!r} is used twice: line ids are unique")
            seen.add(line.line_id)
        return lines

    @model_validator(mode="after")
    def _located(self) -> OrderRequested:
        if self.strategy == "nearest" and self.ship_to is None:
            raise ValueError("the nearest strategy needs ship_to {lat, lon}")
        return self


class ConfirmRequested(Data):
    order_id: Ident


class CancelRequested(Data):
    order_id: Ident
    reason: Note | None = None


class OrderExpired(Data):
    order_id: Ident


class ReservationReport(Data):
    """A reservation event of the stock processor (`contract.outputs.ReservationEvent`),
    read back by the coordinator; its kind is its class."""

    sku: Name
    warehouse: Name
    order_id: Ident
    line_id: Ident
    quantity: Annotated[int, Field(strict=True, ge=0), Whole]
    reason: str | None = None


class Accepted(ReservationReport):
    pass


class Rejected(ReservationReport):
    pass


class Confirmed(ReservationReport):
    pass


class Released(ReservationReport):
    pass


class Expired(ReservationReport):
    pass


class Fulfilled(ReservationReport):
    pass


OrderData = (OrderRequested | ConfirmRequested | CancelRequested | OrderExpired | Accepted
             | Rejected | Confirmed | Released | Expired | Fulfilled)


class OrderInput(NamedTuple):
    """A validated input of the order coordinator; what `orders.decide` consumes."""

    id: str
    type: str
    time: datetime
    data: OrderData
    order_id: str  # the Kafka key
    source: str = ""


def fingerprint(request: OrderRequested) -> str:
    """What makes two order.requested the same order: their known fields, as the model
    reads them (defaults filled in, times in UTC), so a resent request is recognised
    whatever its envelope, key order or spelling of a time."""
    body = request.model_dump(mode="json", exclude={"expires_at"})
    if request.expires_at is not None:
        body["expires_at"] = request.expires_at.astimezone(UTC).isoformat()
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
