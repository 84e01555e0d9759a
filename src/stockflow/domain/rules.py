"""The stock rules of the contract: `apply(state, event, policy) -> Decision`, no I/O.

Output payloads are plain dicts shaped like the output models in `stockflow.events`
(a unit test validates every payload against its model): building pydantic models here
would cost more than the rules themselves.

Every handler turns one typed event into a `_Change` (or a no-op / rejection decision);
`_settle` then does what every applied change shares: version, ledger entry,
stock.changed and the low-stock transition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from stockflow.domain.effects import Decision, LedgerEntry, Outcome, Output
from stockflow.domain.state import (
    LineKey,
    Policy,
    Quantities,
    Reservation,
    Status,
    StockState,
    severity_of,
)
from stockflow.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OversellKind,
    ReceiptReceived,
    ReservationExpired,
    ReturnReceived,
    ShipmentDispatched,
    StockAdjusted,
    StockCounted,
    StockDamaged,
    ThresholdsSet,
    TopicKind,
    TransferDispatched,
    TransferIncoming,
    TransferReceived,
)

__all__ = ["apply", "order_of", "references_of"]


class _Change(NamedTuple):
    qty: Quantities
    lines: tuple[Reservation, ...] = ()
    refs: tuple[tuple[str, int], ...] = ()
    outputs: tuple[Output, ...] = ()
    reference: str | None = None
    thresholds: tuple[int, int] | None = None
    note: str | None = None


def reference(kind: str, ident: str, line: str | None = None) -> str:
    """A movement reference, length-prefixed so no two (id, line) pairs collide."""
    return f"{kind}:{len(ident)}:{ident}:{line or ''}"


def references_of(event: Event) -> tuple[str, ...]:
    """The movement references applying `event` may read: the shell loads just these."""
    d = event.data
    match d:
        case ShipmentDispatched():
            return (reference("shipment", d.shipment_id, d.line_id),)
        case TransferDispatched():
            return (reference("transfer-dispatched", d.transfer_id),)
        case TransferIncoming() | TransferReceived():
            return (reference("transfer-incoming", d.transfer_id),
                    reference("transfer-received", d.transfer_id))
        case ReceiptReceived():
            return (reference("receipt", d.receipt_id, d.line_id),)
        case ReturnReceived():
            return (reference("return", d.return_id, d.line_id),)
        case StockAdjusted():
            return (reference("adjustment", d.adjustment_id),)
        case StockCounted():
            return (reference("count", d.count_id),)
        case StockDamaged():
            return (reference("damage", d.damage_id),)
    return ()


_ORDERED = (OrderPlaced, OrderConfirmed, OrderCancelled, ReservationExpired, ShipmentDispatched)


def order_of(event: Event) -> str | None:
    """The order whose reservation lines at this key `event` may read or change."""
    d = event.data
    return d.order_id if isinstance(d, _ORDERED) else None


def apply(state: StockState, event: Event, policy: Policy) -> Decision:
    """Apply one event to one key's state."""
    d = event.data
    result: _Change | Decision
    match d:
        case OrderPlaced():
            result = _placed(state, event, d, policy)
        case OrderConfirmed():
            result = _confirmed(state, event, d)
        case OrderCancelled():
            result = _cancelled(state, event, d)
        case ReservationExpired():
            result = _expired(state, event, d)
        case ShipmentDispatched():
            result = _shipped(state, event, d)
        case TransferDispatched():
            result = _transfer_dispatched(state, event, d)
        case TransferIncoming():
            result = _transfer_incoming(state, d)
        case TransferReceived():
            result = _transfer_received(state, d)
        case ReceiptReceived():
            result = _received(state, reference("receipt", d.receipt_id, d.line_id), d.quantity)
        case ReturnReceived():
            result = _returned(state, d)
        case StockAdjusted():
            result = _adjusted(state, d)
        case StockCounted():
            result = _counted(state, d)
        case StockDamaged():
            result = _damaged(state, d)
        case ThresholdsSet():
            result = _thresholds(state, d)
    if isinstance(result, Decision):
        return result
    return _settle(state, event, result)


def _noop(state: StockState, why: str) -> Decision:
    return Decision(state, Outcome.NOOP, message=why)


def _cause(event: Event) -> dict[str, str]:
    return {"event_id": event.id, "type": event.type}


# --- reservations --------------------------------------------------------------------


def _reservation_output(
    state: StockState, event: Event, word: str, r: Reservation, quantity: int,
    *, reason: str | None = None,
) -> Output:
    data: dict[str, object] = {
        "sku": state.sku, "warehouse": state.warehouse, "order_id": r.order_id,
        "line_id": r.line_id, "quantity": quantity, "backordered": r.backordered}
    if r.line_count is not None:
        data["line_count"] = r.line_count
    if reason is not None:
        data["reason"] = reason
    data["cause"] = _cause(event)
    return Output(TopicKind.RESERVATIONS, f"reservation.{word}", r.order_id,
                  f"{r.order_id}/{r.line_id}", data)


def _oversell(
    state: StockState, event: Event, kind: OversellKind, requested: int, before: int, **ids: str
    | None,
) -> Output:
    data: dict[str, object] = {
        "sku": state.sku, "warehouse": state.warehouse, "kind": kind, "requested": requested,
        "available_before": before, "shortfall": requested - max(before, 0),
        **{k: v for k, v in ids.items() if v is not None}, "cause": _cause(event)}
    return Output(TopicKind.OVERSELL, "oversell.detected", state.key, kind, data)


def _lines_of(state: StockState, order_id: str, line_id: str | None) -> list[Reservation]:
    return sorted(
        (r for r in state.lines.values()
         if r.order_id == order_id and (line_id is None or r.line_id == line_id)),
        key=lambda r: r.line_id,
    )


def _placed(state: StockState, event: Event, d: OrderPlaced, policy: Policy) -> _Change | Decision:
    known = state.lines.get((d.order_id, d.line_id))
    if known is not None and (known.placed or known.status is not Status.FULFILLED):
        return _noop(state, f"line already recorded as {known.status.value}")
    # Units shipped before the placement (a placeholder) lowered on_hand without consuming
    # a reservation: adding them back gives the sellable the placement would have seen had
    # it come first, so the outcome does not depend on the interleaving.
    early = known.shipped if known is not None else 0
    sellable = state.sellable + early
    ids = {"order_id": d.order_id, "line_id": d.line_id}
    if d.quantity <= sellable or d.allow_backorder:
        backordered = d.quantity > sellable
        remaining = max(d.quantity - early, 0)
        r = Reservation(d.order_id, d.line_id, d.quantity, remaining,
                        Status.PENDING if remaining else Status.FULFILLED,
                        d.expires_at or event.time + policy.reservation_ttl, backordered,
                        d.line_count, early)
        outputs = [_reservation_output(state, event, "accepted", r, d.quantity)]
        if not remaining:
            outputs.append(_reservation_output(state, event, "fulfilled", r, d.quantity))
        if backordered:
            outputs.append(_oversell(state, event, "backordered", d.quantity, sellable, **ids))
        qty = state.qty.add(reserved=remaining)
        return _Change(qty, lines=(r,), outputs=tuple(outputs))
    r = Reservation(d.order_id, d.line_id, d.quantity, 0, Status.REJECTED,
                    line_count=d.line_count, shipped=early)
    outputs = [
        _reservation_output(state, event, "rejected", r, d.quantity,
                           reason="insufficient_stock"),
        _oversell(state, event, "reservation_rejected", d.quantity, sellable, **ids),
    ]
    return _Change(state.qty, lines=(r,), outputs=tuple(outputs))


def _confirmed(state: StockState, event: Event, d: OrderConfirmed) -> _Change | Decision:
    pending = [r for r in _lines_of(state, d.order_id, d.line_id) if r.status is Status.PENDING]
    if not pending:
        return _noop(state, "no pending reservation to confirm")
    lines = tuple(r.settled(r.remaining, Status.CONFIRMED) for r in pending)
    outputs = tuple(_reservation_output(state, event, "confirmed", r, r.remaining) for r in lines)
    return _Change(state.qty, lines=lines, outputs=outputs)


def _release(
    state: StockState, event: Event, lines: Sequence[Reservation], status: Status, word: str,
    *, reason: str | None = None,
) -> _Change:
    freed = sum(r.remaining for r in lines)
    changed = tuple(r.settled(0, status) for r in lines)
    outputs = tuple(_reservation_output(state, event, word, r, r.remaining, reason=reason)
                    for r in lines)
    qty = state.qty.add(reserved=-freed)
    return _Change(qty, lines=changed, outputs=outputs)


def _cancelled(state: StockState, event: Event, d: OrderCancelled) -> _Change | Decision:
    active = [r for r in _lines_of(state, d.order_id, d.line_id) if r.active]
    if active:
        return _release(state, event, active, Status.RELEASED, "released", reason=d.reason)
    if d.line_id is not None:
        known = state.lines.get((d.order_id, d.line_id))
        if known is None or (not known.placed and known.status is Status.FULFILLED):
            # A line not placed yet (unknown, or only shipped so far) is remembered as
            # released, so that an order.placed arriving later for it is a no-op.
            tomb = Reservation(d.order_id, d.line_id, 0, 0, Status.RELEASED,
                               shipped=known.shipped if known is not None else 0)
            return _Change(state.qty, lines=(tomb,))
    return _noop(state, "no active reservation to release")


def _expired(state: StockState, event: Event, d: ReservationExpired) -> _Change | Decision:
    r = state.lines.get((d.order_id, d.line_id))
    if r is None or r.status is not Status.PENDING:
        return _noop(state, "reservation is not pending")
    if r.expires_at is None or r.expires_at > event.time:
        return _noop(state, "reservation has not expired yet")
    return _release(state, event, [r], Status.EXPIRED, "expired")


def _ship_line(
    state: StockState, event: Event, order_id: str, line_id: str, quantity: int,
) -> tuple[int, tuple[Reservation, ...], tuple[Output, ...]]:
    """A shipment naming its line: every unit counts as shipped on the line, whatever its
    status; an active line gives up to its remaining. Returns (reserved taken, lines,
    outputs)."""
    r = state.lines.get((order_id, line_id))
    if r is None:
        # Shipped before it was placed: a placeholder that order.placed takes into account.
        return 0, (Reservation(order_id, line_id, 0, 0, Status.FULFILLED,
                               shipped=quantity),), ()
    take = min(quantity, r.remaining) if r.active else 0
    status = r.status
    # A placed line shipped in full is fulfilled, even after a release or expiry (a shipment
    # is a physical fact). Migration 0002 gave lines written before `shipped` their count.
    if r.placed and status is not Status.REJECTED and r.shipped + quantity >= r.quantity:
        status = Status.FULFILLED
    nr = r.settled(r.remaining - take, status, quantity)
    outputs: tuple[Output, ...] = ()
    if status is Status.FULFILLED and r.status is not Status.FULFILLED:
        outputs = (_reservation_output(state, event, "fulfilled", nr, r.quantity),)
    return take, (nr,), outputs


def _consume(
    state: StockState, event: Event, order_id: str, quantity: int,
) -> tuple[int, tuple[Reservation, ...], tuple[Output, ...]]:
    """A shipment naming only the order: it consumes the order's active lines at this key in
    line_id order, each counting what it gave as shipped. Returns (reserved taken, lines,
    outputs)."""
    left, taken = quantity, 0
    lines: list[Reservation] = []
    outputs: list[Output] = []
    for r in _lines_of(state, order_id, None):
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
            outputs.append(_reservation_output(state, event, "fulfilled", nr, r.quantity))
    return taken, tuple(lines), tuple(outputs)


# --- physical movements --------------------------------------------------------------


def _seen(state: StockState, refs: Iterable[str]) -> str | None:
    return next((r for r in refs if r in state.refs), None)


def _shipped(state: StockState, event: Event, d: ShipmentDispatched) -> _Change | Decision:
    ref = reference("shipment", d.shipment_id, d.line_id)
    if _seen(state, [ref]):
        return _noop(state, "shipment already applied")
    before = state.qty.on_hand
    outputs: list[Output] = []
    lines: tuple[Reservation, ...]
    if d.quantity > before:
        outputs.append(_oversell(
            state, event, "shipment_exceeds_on_hand", d.quantity, before,
            order_id=d.order_id, line_id=d.line_id, shipment_id=d.shipment_id))
    taken, lines = 0, ()
    if d.order_id is not None:
        taken, lines, more = (
            _consume(state, event, d.order_id, d.quantity) if d.line_id is None
            else _ship_line(state, event, d.order_id, d.line_id, d.quantity))
        outputs.extend(more)
    qty = state.qty.add(on_hand=-d.quantity, reserved=-taken)
    return _Change(qty, lines=lines, refs=((ref, d.quantity),), outputs=tuple(outputs),
                   reference=ref)


def _transfer_dispatched(
    state: StockState, event: Event, d: TransferDispatched,
) -> _Change | Decision:
    ref = reference("transfer-dispatched", d.transfer_id)
    if _seen(state, [ref]):
        return _noop(state, "transfer already dispatched")
    before = state.qty.on_hand
    outputs: list[Output] = []
    if d.quantity > before:
        outputs.append(_oversell(state, event, "shipment_exceeds_on_hand", d.quantity, before,
                                 transfer_id=d.transfer_id))
    incoming = {"transfer_id": d.transfer_id, "sku": d.sku, "warehouse": d.to_warehouse,
                "from_warehouse": d.warehouse, "quantity": d.quantity}
    target = f"{d.sku}@{d.to_warehouse}"
    outputs.append(Output(TopicKind.RECEIPTS, "transfer.incoming", target, target, incoming))
    qty = state.qty.add(on_hand=-d.quantity)
    return _Change(qty, refs=((ref, d.quantity),), outputs=tuple(outputs), reference=ref)


def _transfer_incoming(state: StockState, d: TransferIncoming) -> _Change | Decision:
    ref = reference("transfer-incoming", d.transfer_id)
    received = reference("transfer-received", d.transfer_id)
    if _seen(state, [ref, received]):
        return _noop(state, "transfer already announced or received")
    qty = state.qty.add(in_transit=d.quantity)
    return _Change(qty, refs=((ref, d.quantity),), reference=ref)


def _transfer_received(state: StockState, d: TransferReceived) -> _Change | Decision:
    ref = reference("transfer-received", d.transfer_id)
    if _seen(state, [ref]):
        return _noop(state, "transfer already received")
    announced = state.refs.get(reference("transfer-incoming", d.transfer_id), 0)
    qty = state.qty.add(on_hand=d.quantity, in_transit=-announced)
    return _Change(qty, refs=((ref, d.quantity),), reference=ref)


def _received(state: StockState, ref: str, quantity: int) -> _Change | Decision:
    if _seen(state, [ref]):
        return _noop(state, "receipt already applied")
    qty = state.qty.add(on_hand=quantity)
    return _Change(qty, refs=((ref, quantity),), reference=ref)


def _returned(state: StockState, d: ReturnReceived) -> _Change | Decision:
    ref = reference("return", d.return_id, d.line_id)
    if d.condition == "resellable":
        return _received(state, ref, d.quantity)
    if _seen(state, [ref]):
        return _noop(state, "return already applied")
    qty = state.qty.add(damaged=d.quantity)
    return _Change(qty, refs=((ref, d.quantity),), reference=ref)


def _rejected(state: StockState, why: str) -> Decision:
    return Decision(state, Outcome.REJECTED, message=why)


def _adjusted(state: StockState, d: StockAdjusted) -> _Change | Decision:
    ref = reference("adjustment", d.adjustment_id)
    if _seen(state, [ref]):
        return _noop(state, "adjustment already applied")
    after = state.qty.on_hand + d.delta
    if d.delta < 0 and after < 0:
        return _rejected(state, f"on_hand {state.qty.on_hand} {d.delta:+d} would be {after}")
    return _Change(state.qty.add(on_hand=d.delta), refs=((ref, d.delta),), reference=ref,
                   note=d.reason)


def _counted(state: StockState, d: StockCounted) -> _Change | Decision:
    ref = reference("count", d.count_id)
    if _seen(state, [ref]):
        return _noop(state, "count already applied")
    q = state.qty
    return _Change(Quantities(d.on_hand, q.reserved, q.in_transit, q.damaged),
                   refs=((ref, d.on_hand),),
                   reference=ref, note="cycle_count")


def _damaged(state: StockState, d: StockDamaged) -> _Change | Decision:
    ref = reference("damage", d.damage_id)
    if _seen(state, [ref]):
        return _noop(state, "damage already applied")
    if d.quantity > state.qty.on_hand:
        return _rejected(state, f"damaging {d.quantity} exceeds on_hand {state.qty.on_hand}")
    qty = state.qty.add(on_hand=-d.quantity, damaged=d.quantity)
    return _Change(qty, refs=((ref, d.quantity),), reference=ref)


def _thresholds(state: StockState, d: ThresholdsSet) -> _Change | Decision:
    wanted = (d.reorder_point, d.safety_stock)
    if wanted == (state.reorder_point, state.safety_stock):
        return _noop(state, "thresholds unchanged")
    return _Change(state.qty, thresholds=wanted)


# --- what every applied change shares -------------------------------------------------


def _settle(state: StockState, event: Event, change: _Change) -> Decision:
    reorder_point, safety_stock = change.thresholds or (state.reorder_point, state.safety_stock)
    old, qty = state.qty, change.qty
    available = qty.on_hand - qty.reserved
    severity = severity_of(available, reorder_point)
    version = state.version + 1
    lines = state.lines
    if change.lines:
        merged: dict[LineKey, Reservation] = dict(lines)
        merged.update({(r.order_id, r.line_id): r for r in change.lines})
        lines = merged
    refs = state.refs
    if change.refs:
        refs = {**refs, **dict(change.refs)}
    new = StockState(state.sku, state.warehouse, qty, version, reorder_point, safety_stock,
                     severity, lines, refs)
    outputs: list[Output] = []
    cause = _cause(event)
    key = state.key
    if qty != old:
        outputs.append(Output(TopicKind.STOCK_CHANGED, "stock.changed", key, key, {
            "sku": state.sku, "warehouse": state.warehouse, "on_hand": qty.on_hand,
            "reserved": qty.reserved, "available": available, "in_transit": qty.in_transit,
            "damaged": qty.damaged, "version": version,
            "delta": {"on_hand": qty.on_hand - old.on_hand,
                      "reserved": qty.reserved - old.reserved,
                      "in_transit": qty.in_transit - old.in_transit,
                      "damaged": qty.damaged - old.damaged},
            "cause": cause}))
    outputs.extend(change.outputs)
    if severity != state.severity:
        word = ("raised" if state.severity == "ok" else "resolved" if severity == "ok"
                else "changed")
        outputs.append(Output(TopicKind.LOW_STOCK, f"low-stock.{word}", key, key, {
            "sku": state.sku, "warehouse": state.warehouse, "severity": severity,
            "available": available, "reorder_point": reorder_point,
            "safety_stock": safety_stock, "cause": cause}))
    ledger = LedgerEntry(event.id, event.type, old, qty, version, change.reference,
                         change.note)
    return Decision(new, Outcome.APPLIED, tuple(outputs), ledger, change.lines, change.refs)
