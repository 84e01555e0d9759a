"""Reservation lines: placing, confirming, cancelling, expiring and shipping against them."""

from __future__ import annotations

from collections.abc import Sequence

from stockflow.domain.change import Change, cause, noop, oversell
from stockflow.domain.effects import Decision, Output
from stockflow.domain.inputs import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    ReservationExpired,
)
from stockflow.domain.state import Policy, Reservation, Status, StockState

__all__ = ["cancelled", "confirmed", "consume", "expired", "placed", "release",
           "reservation_output", "ship_line"]


def reservation_output(
    state: StockState, event: Event, word: str, r: Reservation, quantity: int,
    *, reason: str | None = None,
) -> Output:
    """A `reservation.<word>` output for `quantity` units of the line `r`."""
    data: dict[str, object] = {
        "sku": state.sku, "warehouse": state.warehouse, "order_id": r.order_id,
        "line_id": r.line_id, "quantity": quantity, "backordered": r.backordered}
    if r.line_count is not None:
        data["line_count"] = r.line_count
    if reason is not None:
        data["reason"] = reason
    data["cause"] = cause(event)
    return Output(f"reservation.{word}", r.order_id,
                  f"{r.order_id}/{r.line_id}", data)


def lines_of(state: StockState, order_id: str, line_id: str | None) -> list[Reservation]:
    """The key's lines of an order (or its one line `line_id`), by line id."""
    return sorted(
        (r for r in state.lines.values()
         if r.order_id == order_id and (line_id is None or r.line_id == line_id)),
        key=lambda r: r.line_id,
    )


def placed(state: StockState, event: Event, d: OrderPlaced, policy: Policy) -> Change | Decision:
    """An order line placed: its units reserved, backordered or rejected."""
    known = state.lines.get((d.order_id, d.line_id))
    if known is not None and (known.placed or known.status is not Status.FULFILLED):
        return noop(state, f"line already recorded as {known.status.value}")
    # Units shipped before the placement (a placeholder) lowered on_hand without consuming
    # a reservation: adding them back gives the sellable the placement would have seen had
    # it come first, so the outcome does not depend on the interleaving.
    early = known.shipped if known is not None else 0
    sellable = state.sellable + early
    ids = {"order_id": d.order_id, "line_id": d.line_id}
    if d.quantity <= sellable or d.allow_backorder:
        backordered = d.quantity > sellable
        remaining = max(d.quantity - early, 0)
        r = Reservation(order_id=d.order_id, line_id=d.line_id, quantity=d.quantity,
                        remaining=remaining,
                        status=Status.PENDING if remaining else Status.FULFILLED,
                        expires_at=d.expires_at or event.time + policy.reservation_ttl,
                        backordered=backordered, line_count=d.line_count, shipped=early,
                        placed_version=state.version + 1)
        outputs = [reservation_output(state, event, "accepted", r, d.quantity)]
        if not remaining:
            outputs.append(reservation_output(state, event, "fulfilled", r, d.quantity))
        if backordered:
            outputs.append(oversell(state, event, "backordered", d.quantity, sellable, **ids))
        qty = state.qty.add(reserved=remaining)
        return Change(qty, lines=(r,), outputs=tuple(outputs))
    r = Reservation(order_id=d.order_id, line_id=d.line_id, quantity=d.quantity, remaining=0,
                    status=Status.REJECTED, line_count=d.line_count, shipped=early,
                    placed_version=state.version + 1)
    outputs = [
        reservation_output(state, event, "rejected", r, d.quantity,
                           reason="insufficient_stock"),
        oversell(state, event, "reservation_rejected", d.quantity, sellable, **ids),
    ]
    return Change(state.qty, lines=(r,), outputs=tuple(outputs), lost=d.quantity)


def confirmed(state: StockState, event: Event, d: OrderConfirmed) -> Change | Decision:
    """An order's pending lines here confirmed."""
    pending = [r for r in lines_of(state, d.order_id, d.line_id) if r.status is Status.PENDING]
    if not pending:
        return noop(state, "no pending reservation to confirm")
    lines = tuple(r.settled(r.remaining, Status.CONFIRMED) for r in pending)
    outputs = tuple(reservation_output(state, event, "confirmed", r, r.remaining) for r in lines)
    return Change(state.qty, lines=lines, outputs=outputs)


def release(
    state: StockState, event: Event, lines: Sequence[Reservation], status: Status, word: str,
    *, reason: str | None = None,
) -> Change:
    """Release `lines`' remaining units, their status set to `status`."""
    freed = sum(r.remaining for r in lines)
    changed = tuple(r.settled(0, status) for r in lines)
    outputs = tuple(reservation_output(state, event, word, r, r.remaining, reason=reason)
                    for r in lines)
    qty = state.qty.add(reserved=-freed)
    return Change(qty, lines=changed, outputs=outputs)


def cancelled(state: StockState, event: Event, d: OrderCancelled) -> Change | Decision:
    """An order (or one line) cancelled: its active lines here released."""
    active = [r for r in lines_of(state, d.order_id, d.line_id) if r.active]
    if active:
        return release(state, event, active, Status.RELEASED, "released", reason=d.reason)
    if d.line_id is not None:
        known = state.lines.get((d.order_id, d.line_id))
        if known is None or (not known.placed and known.status is Status.FULFILLED):
            # A line not placed yet (unknown, or only shipped so far) is remembered as
            # released, so that an order.placed arriving later for it is a no-op.
            tomb = Reservation(order_id=d.order_id, line_id=d.line_id, quantity=0,
                               remaining=0, status=Status.RELEASED,
                               shipped=known.shipped if known is not None else 0)
            return Change(state.qty, lines=(tomb,))
    return noop(state, "no active reservation to release")


def expired(state: StockState, event: Event, d: ReservationExpired) -> Change | Decision:
    """A pending line released when its time has come."""
    r = state.lines.get((d.order_id, d.line_id))
    if r is None or r.status is not Status.PENDING:
        return noop(state, "reservation is not pending")
    if r.expires_at is None or r.expires_at > event.time:
        return noop(state, "reservation has not expired yet")
    return release(state, event, [r], Status.EXPIRED, "expired")


def ship_line(
    state: StockState, event: Event, order_id: str, line_id: str, quantity: int,
) -> tuple[int, tuple[Reservation, ...], tuple[Output, ...]]:
    """A shipment naming its line: every unit counts as shipped on the line, whatever its
    status; an active line gives up to its remaining. Returns (reserved taken, lines,
    outputs)."""
    r = state.lines.get((order_id, line_id))
    if r is None:
        # Shipped before it was placed: a placeholder that order.placed takes into account.
        return 0, (Reservation(order_id=order_id, line_id=line_id, quantity=0, remaining=0,
                               status=Status.FULFILLED, shipped=quantity),), ()
    take = min(quantity, r.remaining) if r.active else 0
    status = r.status
    # A placed line shipped in full is fulfilled, even after a release or expiry (a shipment
    # is a physical fact). Migration 0002 gave lines written before `shipped` their count.
    if r.placed and status is not Status.REJECTED and r.shipped + quantity >= r.quantity:
        status = Status.FULFILLED
    nr = r.settled(r.remaining - take, status, quantity)
    outputs: tuple[Output, ...] = ()
    if status is Status.FULFILLED and r.status is not Status.FULFILLED:
        outputs = (reservation_output(state, event, "fulfilled", nr, r.quantity),)
    return take, (nr,), outputs


def consume(
    state: StockState, event: Event, order_id: str, quantity: int,
) -> tuple[int, tuple[Reservation, ...], tuple[Output, ...]]:
    """A shipment naming only the order: it consumes the order's active lines at this key in
    line_id order, each counting what it gave as shipped. Returns (reserved taken, lines,
    outputs)."""
    left, taken = quantity, 0
    lines: list[Reservation] = []
    outputs: list[Output] = []
    for r in lines_of(state, order_id, None):
        if left == 0:
            break
        if not r.active:
            continue
        take = min(left, r.remaining)
        left, taken = left - take, taken + take
        done = r.remaining == take
        nr = r.settled(r.remaining - take, Status.FULFILLED if done else r.status, take)
        lines.append(nr)
        if done:
            outputs.append(reservation_output(state, event, "fulfilled", nr, r.quantity))
    return taken, tuple(lines), tuple(outputs)
