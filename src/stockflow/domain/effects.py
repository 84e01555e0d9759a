"""What applying an event produces besides the new state: ledger entry, outputs, writes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from stockflow.domain.state import PurchaseOrder, Quantities, Reservation, StockState

__all__ = ["Decision", "LedgerEntry", "Outcome", "Output"]


class Outcome(StrEnum):
    """What became of an event: applied, a no-op, or rejected."""

    APPLIED = "applied"
    NOOP = "noop"  # a repeated reference or line, or nothing to act on
    REJECTED = "rejected"  # negative_result: nothing remembered, goes to the DLQ


class Output(NamedTuple):
    """An event to emit. `line` makes its id unique among the outputs of one cause; `data`
    has the shape of the type's model in `stockflow.contract.outputs.OUTPUT_MODELS` (or, for a
    forwarded input, `INPUT_MODELS`)."""

    type: str
    key: str
    line: str
    data: Mapping[str, Any]


class LedgerEntry(NamedTuple):
    """One ledger row: the event, the quantities before and after, and the key's new version."""

    event_id: str
    event_type: str
    before: Quantities
    after: Quantities
    version: int
    reference: str | None
    note: str | None = None
    actor: str | None = None  # the cause's source
    time: datetime | None = None  # the cause's own time (business time)
    value: Decimal | None = None  # on-hand units moved times their cost; None: cost unknown
    unit_cost: Decimal | None = None  # the key's average unit cost after the movement
    lost: int | None = None  # units of demand turned away: a rejected reservation's quantity
    # reserved units that oversell remediation released along with the movement (already in
    # before/after: the releases are part of the movement's one entry)
    remediated: int | None = None


class Decision(NamedTuple):
    """What applying an event decided: the new state, its outcome, outputs, ledger entry, and
    the lines and references it changed."""

    state: StockState
    outcome: Outcome
    outputs: tuple[Output, ...] = ()
    ledger: LedgerEntry | None = None
    lines: tuple[Reservation, ...] = ()  # reservation lines created or changed
    refs: tuple[tuple[str, int], ...] = ()  # movement references now applied
    po: PurchaseOrder | None = None  # the purchase order changed, if any
    message: str = ""  # why a rejection or no-op happened
    reason: str = "negative_result"  # a rejection's DLQ reason code
