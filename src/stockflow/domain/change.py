"""What the handlers of one event return, and the small pieces they share."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from stockflow.domain.effects import Decision, Outcome, Output
from stockflow.domain.inputs import Event, OversellKind
from stockflow.domain.state import PurchaseOrder, Quantities, Reservation, StockState

__all__ = ["Change", "cause", "noop", "oversell", "reference", "rejected", "seen"]


class Change(NamedTuple):
    """An applied event's effect before `rules.settle` adds what every change shares."""

    qty: Quantities
    lines: tuple[Reservation, ...] = ()
    refs: tuple[tuple[str, int], ...] = ()
    outputs: tuple[Output, ...] = ()
    reference: str | None = None
    thresholds: tuple[int, int] | None = None
    note: str | None = None
    cost: tuple[Decimal, str] | None = None  # a receipt's unit cost and currency
    lost: int = 0  # units of demand turned away (a rejected reservation's quantity)
    remediated: int = 0  # reserved units oversell remediation released with a movement
    po: PurchaseOrder | None = None  # the purchase order the event changed


def reference(kind: str, ident: str, line: str | None = None) -> str:
    """A movement reference, length-prefixed so no two (id, line) pairs collide."""
    return f"{kind}:{len(ident)}:{ident}:{line or ''}"


def noop(state: StockState, why: str) -> Decision:
    """A decision that changes nothing, and why."""
    return Decision(state, Outcome.NOOP, message=why)


def rejected(state: StockState, why: str, reason: str = "negative_result") -> Decision:
    """A rejection of the event, and why: nothing remembered, it goes to the DLQ."""
    return Decision(state, Outcome.REJECTED, message=why, reason=reason)


def cause(event: Event) -> dict[str, str]:
    """The `cause` of an output: the event that led to it."""
    return {"event_id": event.id, "type": event.type}


def seen(state: StockState, refs: Iterable[str]) -> str | None:
    """The first of `refs` the state has applied already, or None."""
    return next((r for r in refs if r in state.refs), None)


def oversell(
    state: StockState, event: Event, kind: OversellKind, requested: int, before: int, **ids: str
    | None,
) -> Output:
    """An `oversell.detected` output: `requested` units against `before` available."""
    data: dict[str, object] = {
        "sku": state.sku, "warehouse": state.warehouse, "kind": kind, "requested": requested,
        "available_before": before, "shortfall": requested - max(before, 0),
        **{k: v for k, v in ids.items() if v is not None}, "cause": cause(event)}
    return Output("oversell.detected", state.key, kind, data)
