"""Oversell remediation (CONTRACT, "Orders"): with `Remediation.RELEASE_NEWEST_PENDING`, a
physical movement that lowers a key's available below 0 releases the key's pending,
non-backordered reservations, most recently applied first, until available is back to
min(0, available before the movement).

A physical movement is any event that lowers on_hand: a shipment, a transfer's dispatch, a
negative adjustment, a count below the current on_hand, damage. Order events never move
on_hand, so a backordered placement that takes available below 0 releases nothing.

Decisions the contract leaves open:
- Whole reservations are released, never part of one: an order line reserved for less than
  was ordered is not something an order service can act on, while a released part is one
  it re-sources. The last release may therefore bring available above the floor.
- Releases are part of the movement's decision: one version, one ledger entry (its
  `remediated` says how much of the reserved drop they were), one stock.changed with the
  final quantities, one `reservation.released` (reason `oversell_remediation`) per line.
"""

from __future__ import annotations

from stockflow.domain.change import Change
from stockflow.domain.inputs import (
    Event,
    ShipmentDispatched,
    StockAdjusted,
    StockCounted,
    StockDamaged,
    TransferDispatched,
)
from stockflow.domain.reservations import reservation_output
from stockflow.domain.state import LineKey, Reservation, Status, StockState

__all__ = ["REASON", "may_lower_on_hand", "remedied"]

REASON = "oversell_remediation"

_LOWERING = (ShipmentDispatched, TransferDispatched, StockCounted, StockDamaged)


def may_lower_on_hand(event: Event) -> bool:
    """Whether applying `event` may lower on_hand: with remediation on, the shell hands such
    an event every pending line of its key (`StockState.lines`), as it may release them."""
    d = event.data
    return isinstance(d, _LOWERING) or (isinstance(d, StockAdjusted) and d.delta < 0)


def remedied(state: StockState, event: Event, change: Change) -> Change:
    """`change`, a movement that lowered on_hand, with the releases it calls for, if any.
    `state.lines` must hold every pending line of the key (see `may_lower_on_hand`)."""
    floor = min(0, state.qty.available)
    qty = change.qty
    available = qty.on_hand - qty.reserved
    if available >= floor:
        return change
    lines: dict[LineKey, Reservation] = dict(state.lines)
    changed = {r.line: r for r in change.lines}
    lines.update(changed)
    # placed_version is unique per key (one placement per version), the line a stable tiebreak
    newest_first = sorted(
        (r for r in lines.values() if r.status is Status.PENDING and not r.backordered),
        key=lambda r: (r.placed_version, r.line), reverse=True)
    released: list[Reservation] = []
    for r in newest_first:
        if available >= floor:
            break
        released.append(r)
        available += r.remaining
    if not released:
        return change
    freed = sum(r.remaining for r in released)
    outputs = tuple(reservation_output(state, event, "released", r, r.remaining, reason=REASON)
                    for r in released)
    changed.update({r.line: r.settled(0, Status.RELEASED) for r in released})
    return change._replace(qty=qty.add(reserved=-freed), lines=tuple(changed.values()),
                           outputs=change.outputs + outputs, remediated=freed)
