"""The order coordinator's state of one order, and what deciding an event gives back, as
immutable values (`stockflow.domain.orders` is the decider). The state is plain data the
shell can store as it is: pydantic's `TypeAdapter(OrderState)` writes and reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from stockflow.domain.allocation import LineShort, Snapshot
from stockflow.domain.effects import Outcome, Output
from stockflow.domain.order_inputs import PART_SEPARATOR, OrderRequested
from stockflow.domain.warehouses import Warehouse

__all__ = ["DEFAULT_TTL", "HELD", "LIVE", "Context", "Ending", "OrderDecision", "OrderPart",
           "OrderState", "PartStatus", "Phase"]

DEFAULT_TTL = timedelta(minutes=15)  # the contract's reservation TTL default


class Phase(StrEnum):
    """Where an order is in its life, as the coordinator sees it."""

    AWAITING = "awaiting"  # a cancel or confirm came before its order.requested
    ALLOCATING = "allocating"  # parts placed, not every line accepted in full yet
    ALLOCATED = "allocated"
    CONFIRMING = "confirming"  # parts told to confirm; order.confirmed not out yet
    CONFIRMED = "confirmed"
    RELEASING = "releasing"  # ending: parts told to release; `OrderState.ending` says how
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class PartStatus(StrEnum):
    """What the coordinator knows of a part: placed (no word from the processor yet), then
    the processor's verdict. Reports only ever move a part down this list."""

    PLACED = "placed"
    ACCEPTED = "accepted"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    RELEASED = "released"
    EXPIRED = "expired"
    FULFILLED = "fulfilled"  # shipped in full: counts as confirmed and as released


LIVE = frozenset({PartStatus.PLACED, PartStatus.ACCEPTED, PartStatus.CONFIRMED})
HELD = frozenset({PartStatus.ACCEPTED, PartStatus.CONFIRMED, PartStatus.FULFILLED})


@dataclass(frozen=True, slots=True)
class OrderPart:
    """A (line, warehouse) share, placed as reservation line `LINE~k`."""

    line_id: str
    k: int
    sku: str
    warehouse: str
    quantity: int
    status: PartStatus = PartStatus.PLACED
    confirm_sent: bool = False
    cancel_sent: bool = False
    # after allocation: the lost part (its id) whose units this one re-sources, until
    # order.reallocated says so
    replaces: str | None = None

    @property
    def id(self) -> str:
        """The part's reservation line id, `LINE~k`."""
        return f"{self.line_id}{PART_SEPARATOR}{self.k}"

    @property
    def key(self) -> str:
        """The part's key, SKU@WAREHOUSE."""
        return f"{self.sku}@{self.warehouse}"


@dataclass(frozen=True, slots=True)
class Ending:
    """The last status of an order whose parts are being released, sent once they are."""

    status: Literal["rejected", "cancelled"]
    reason: str | None
    lines: tuple[LineShort, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderState:
    """One order as the coordinator knows it: its phase, request, deadline and parts."""

    order_id: str
    phase: Phase
    request: OrderRequested | None = None  # None while AWAITING
    fingerprint: str | None = None
    deadline: datetime | None = None  # expires_at, else requested + TTL
    parts: tuple[OrderPart, ...] = ()
    confirm_held: bool = False  # confirm requested before the order was allocated
    cancel_held: bool = False  # cancel requested before the order was requested
    cancel_reason: str | None = None
    moving: tuple[str, ...] = ()  # lost parts being re-sourced after allocation
    ending: Ending | None = None
    requested_at: datetime | None = None  # the order.requested's time: how long answers take
    requested_by: str | None = None  # the order.requested's source: who the parts are for


@dataclass(frozen=True, slots=True)
class Context:
    """What the shell reads before deciding: the warehouse registry, the units allocation may
    take (sellable minus parts placed but not yet among the processor's reservations, read
    in one snapshot), the time, the reservation TTL an order without expires_at gets, and
    the order's placed parts the processor will never judge (`voided`: it had recorded a
    cancel of that line before the placement, which made the placement a no-op)."""

    warehouses: tuple[Warehouse, ...]
    snapshot: Snapshot
    now: datetime
    reservation_ttl: timedelta = DEFAULT_TTL
    voided: frozenset[str] = frozenset()  # part ids


@dataclass(frozen=True, slots=True)
class OrderDecision:
    """The order after the event (None: still unknown), and what to send: `commands` onto
    `inventory.orders` (order.placed / order.confirmed / order.cancelled of parts, keyed
    SKU@WH), `statuses` onto `inventory.order-status` (keyed order_id). An output's `line`
    makes its id: the part for a command, the released part for order.reallocated, "" for
    the other statuses (each comes at most once per order)."""

    state: OrderState | None
    outcome: Outcome
    commands: tuple[Output, ...] = ()
    statuses: tuple[Output, ...] = ()
    message: str = ""  # why a no-op or a rejection
    reason: str = ""  # a rejection's DLQ reason code
