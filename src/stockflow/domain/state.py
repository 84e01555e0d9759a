"""The state of one stock item (SKU@WAREHOUSE) as immutable values.

The values the rules create for every event are NamedTuples: immutable like frozen
dataclasses, but built about five times faster (a frozen dataclass sets each field through
`object.__setattr__`), which showed as a tenth of the processor's CPU."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "DEFAULT_POLICY",
    "EMPTY_LINES",
    "EMPTY_REFS",
    "LineKey",
    "PoLine",
    "Policy",
    "PurchaseOrder",
    "Quantities",
    "Remediation",
    "Reservation",
    "Severity",
    "Status",
    "StockState",
    "new_state",
    "severity_of",
]

LineKey = tuple[str, str]  # (order_id, line_id)
EMPTY_LINES: Mapping[LineKey, Reservation] = MappingProxyType({})
EMPTY_REFS: Mapping[str, int] = MappingProxyType({})


class Status(StrEnum):
    """A reservation line's status."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    RELEASED = "released"
    EXPIRED = "expired"
    FULFILLED = "fulfilled"


ACTIVE = frozenset({Status.PENDING, Status.CONFIRMED})


class Severity(StrEnum):
    """A key's low-stock severity: out_of_stock when available <= 0, low when available <=
    reorder_point, else ok."""

    OK = "ok"
    LOW = "low"
    OUT_OF_STOCK = "out_of_stock"


class Quantities(NamedTuple):
    """A key's unit counts: on hand, reserved, in transit and damaged."""

    on_hand: int = 0
    reserved: int = 0
    in_transit: int = 0
    damaged: int = 0
    on_order: int = 0  # ordered from suppliers, not yet received (purchase orders)

    @property
    def available(self) -> int:
        """Units on hand not reserved."""
        return self.on_hand - self.reserved

    def add(self, on_hand: int = 0, reserved: int = 0, in_transit: int = 0,
            damaged: int = 0, on_order: int = 0) -> Quantities:
        """These quantities with the given amounts added."""
        return Quantities(self.on_hand + on_hand, self.reserved + reserved,
                          self.in_transit + in_transit, self.damaged + damaged,
                          self.on_order + on_order)


class PoLine(NamedTuple):
    """What is known of one purchase-order line at a key: how much was ordered (None until
    its purchase-order.placed), the units receipts naming it brought, whether it was
    cancelled (perhaps before it was placed)."""

    ordered: int | None = None
    received: int = 0
    cancelled: bool = False
    expected_at: datetime | None = None


class PurchaseOrder(NamedTuple):
    """One purchase order's facts at a key, each recorded as it came: its lines (a
    placement without a line id is the line ""), the units of receipts that named the
    order but no line, and whether the whole order was cancelled. `open` derives what is
    still on order from them alone, so the order in which a purchase order's events and
    its receipts arrive does not change it (CONTRACT, Purchase orders)."""

    po_id: str
    lines: Mapping[str, PoLine] = MappingProxyType({})
    unnamed: int = 0
    cancelled: bool = False

    def open(self) -> int:
        """Units still on order: each placed line's quantity less what receipts brought it,
        never below 0; receipts that named no line fill the lines in line-id order; a
        cancelled line (or order) has nothing open, though it still takes its share of
        those receipts (so a cancel and a receipt give the same in either order)."""
        return sum(self.open_lines().values())

    def open_lines(self) -> dict[str, int]:
        """What `open` counts, per placed line (by line id; "" for a placement without
        one)."""
        left, opened = self.unnamed, {}
        for line_id in sorted(self.lines):
            line = self.lines[line_id]
            if line.ordered is None:
                continue
            room = max(line.ordered - line.received, 0)
            taken = min(room, left)
            left -= taken
            opened[line_id] = 0 if line.cancelled or self.cancelled else room - taken
        return opened


class Reservation(NamedTuple):
    """One order line at a key. `quantity` is 0 until the line is placed: a line not
    placed yet is either a cancel's tombstone (released) or a placeholder for units
    shipped before the placement (fulfilled). `shipped` counts the units shipments have
    attributed to the line, in any status."""

    order_id: str
    line_id: str
    quantity: int
    remaining: int
    status: Status
    expires_at: datetime | None = None
    backordered: bool = False
    line_count: int | None = None
    shipped: int = 0
    # The key's version its placement made: the key's placements in the order they were
    # applied, which oversell remediation releases newest first. 0 until placed; lines
    # placed before migration 0014 were ranked at or below 0 by that migration.
    placed_version: int = 0

    @property
    def active(self) -> bool:
        """Whether the line still holds units (pending or confirmed)."""
        return self.status in ACTIVE

    @property
    def line(self) -> LineKey:
        """The line's key in its state: (order_id, line_id)."""
        return (self.order_id, self.line_id)

    @property
    def placed(self) -> bool:
        """Whether the line's placement has been applied (a shipment may come first)."""
        return self.quantity > 0

    def settled(self, remaining: int, status: Status, shipped: int = 0) -> Reservation:
        """The line with a new remaining and status, and `shipped` more units shipped
        (built positionally: `_replace` goes through a generic mapping, and confirmations,
        cancels and shipments call this per event)."""
        return Reservation(self.order_id, self.line_id, self.quantity, remaining, status,
                           self.expires_at, self.backordered, self.line_count,
                           self.shipped + shipped, self.placed_version)


class Remediation(StrEnum):
    """What the stock processor does when a physical movement lowers a key's available
    below 0 (CONTRACT "Oversell remediation")."""

    NONE = "none"
    RELEASE_NEWEST_PENDING = "release_newest_pending"


@dataclass(frozen=True, slots=True)
class Policy:
    """Configuration the rules need; everything else comes from the event. Its defaults
    are stockflow's (`Settings` takes them from here)."""

    reservation_ttl: timedelta = timedelta(minutes=15)
    default_reorder_point: int = 10
    default_safety_stock: int = 0
    oversell_remediation: Remediation = Remediation.NONE

    @property
    def remediates(self) -> bool:
        """Whether an oversell is remediated at all."""
        return self.oversell_remediation is not Remediation.NONE


DEFAULT_POLICY = Policy()


class StockState(NamedTuple):
    """One key's quantities, thresholds and perpetual weighted-average unit cost (None
    until a receipt carries a cost; `currency` is set by that first costed receipt), plus
    the reservation lines and movement references that the events at hand may touch (the
    shell loads just those)."""

    sku: str
    warehouse: str
    qty: Quantities = Quantities()
    version: int = 0
    reorder_point: int = DEFAULT_POLICY.default_reorder_point
    safety_stock: int = DEFAULT_POLICY.default_safety_stock
    severity: Severity = Severity.OK
    unit_cost: Decimal | None = None
    currency: str | None = None
    lines: Mapping[LineKey, Reservation] = EMPTY_LINES
    refs: Mapping[str, int] = EMPTY_REFS
    po: PurchaseOrder | None = None  # the purchase order the event at hand names, if any

    @property
    def key(self) -> str:
        """SKU@WAREHOUSE."""
        return f"{self.sku}@{self.warehouse}"

    @property
    def sellable(self) -> int:
        """Units that can still be reserved: available less the safety stock."""
        return self.qty.available - self.safety_stock

    def view(self, lines: Mapping[LineKey, Reservation], refs: Mapping[str, int],
             po: PurchaseOrder | None = None) -> StockState:
        """The same key state, seen with other lines, references and purchase order (faster
        than `_replace`, which goes through a generic mapping; the hot path calls it per
        event)."""
        return StockState(self.sku, self.warehouse, self.qty, self.version, self.reorder_point,
                          self.safety_stock, self.severity, self.unit_cost, self.currency,
                          lines, refs, po)


def new_state(sku: str, warehouse: str, policy: Policy) -> StockState:
    """The state of a key no event has touched yet, with the policy's default thresholds."""
    return StockState(sku, warehouse, reorder_point=policy.default_reorder_point,
                      safety_stock=policy.default_safety_stock)


def severity_of(available: int, reorder_point: int) -> Severity:
    """The alert severity of `available` units against the reorder point."""
    if available <= 0:
        return Severity.OUT_OF_STOCK
    if available <= reorder_point:
        return Severity.LOW
    return Severity.OK
