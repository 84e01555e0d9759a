"""The order coordinator's decider (contract v1.1, Orders): `decide(state, event, context)
-> OrderDecision`, pure. No clock (`context.now`), no I/O, no ids: the shell reads the
state, the registry and the snapshot, calls it, stores the new state and sends the
commands and statuses, whose ids follow from the order, their type and their `line`.

An order's parts are placed as `order.placed` (line `LINE~k`, the order's deadline as
`expires_at`); the processor's reservation events about them move the order on:
`order.allocated` once every line's full quantity is accepted, `order.confirmed` /
`order.cancelled` once every live part is confirmed / released, `order.rejected` once
nothing of the order is reserved any more. Where the contract is silent:

- Known orders: the same order.requested (same fields as the model reads them, whatever
  the envelope) is a no-op, another body a `conflict` rejection. A confirm that comes
  before its order is remembered like a cancel, and applied once the order is allocated.
  Confirm, cancel and expiry of an order that is ending or ended are no-ops.
- An order.requested with a line pinned to a warehouse that is not registered, or not
  active, breaks the contract (issue 25): rejected to the DLQ (`schema_violation`, naming
  the line and the warehouse), nothing placed or remembered. A pinned warehouse that goes
  inactive after the request only fails re-sourcing. An `expires_at` not after `now`
  rejects the order at once (`expired`, nothing placed).
- Re-sourcing (a part rejected, or released by oversell remediation) allocates the lost
  part's units again for that line alone, with the order's strategy and ship_to, never
  from a warehouse that rejected the line (under `fewest_shipments`, from the warehouses
  the order's live parts ship from first, so that no shipment is added if none must
  be); once the deadline has passed it ends the order (`expired`) instead, as a new
  part would expire at once. A pinned line fails.
  Before allocation, a remediated part is re-sourced like a rejected one, and failing
  that the order is rejected `insufficient_stock`; after allocation, `stock_lost`.
- `order.rejected` and `order.cancelled` wait, like `order.confirmed`, until the last
  live part is released (a part placed but not yet judged waits for its verdict); their
  `lines[].allocatable` is, after the request, the units a line held or had in flight
  when the order ended (plus what re-sourcing could still find, for the line that lost).
- A part's expiry at or after the order's deadline is the order expiring (`rejected`,
  `expired`); before it, and any release the coordinator did not ask for with another
  reason, ends an unconfirmed order as `cancelled` (`part_expired` / `part_released`).
  On a confirmed order such a release is only recorded: the system never cancels it.
- `order.expired` (the coordinator's sweeper) before the deadline is a no-op; once the
  parts were told to confirm it is one too: the confirmation, requested in time, decides.
- A part's placement that the processor will never judge (another publisher cancelled
  that very line id before it was placed, so the processor recorded it as released and
  the placement was a no-op; the shell reads that as `context.voided`) is released by
  someone else: the sweeper notices it and sends order.expired, which then treats it as
  a release the coordinator did not ask for (above), whatever the deadline.
- Reservation events for lines without `~`, for unknown orders or parts, and those that
  would move a part backwards (a redelivery) are no-ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from stockflow.domain.allocation import LineRequest, LineShort, Shortfall
from stockflow.domain.effects import Outcome, Output
from stockflow.domain.order_allocation import allocate_lines, line_shorts
from stockflow.domain.order_inputs import (
    PART_SEPARATOR,
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
    RequestedLine,
    ReservationReport,
    fingerprint,
)
from stockflow.domain.order_state import (
    HELD,
    LIVE,
    Context,
    Ending,
    OrderDecision,
    OrderPart,
    OrderState,
    PartStatus,
    Phase,
)
from stockflow.domain.remediation import REASON as REMEDIATION

__all__ = ["decide", "expiry", "skus_of"]

_ENDED = frozenset({Phase.RELEASING, Phase.REJECTED, Phase.CANCELLED})
_UNCONFIRMED = frozenset({Phase.ALLOCATING, Phase.ALLOCATED, Phase.CONFIRMING})
_AFTER_ALLOCATION = frozenset({Phase.ALLOCATED, Phase.CONFIRMING})


def decide(state: OrderState | None, event: OrderInput, context: Context) -> OrderDecision:
    """Decide one input of the coordinator for the order `event.order_id`."""
    d = event.data
    if isinstance(d, OrderRequested):
        return _requested(state, event, d, context)
    if state is None or state.request is None:
        return _before_request(state, event)
    step = _Step(state, event, context)
    match d:
        case ConfirmRequested():
            step.confirm_requested()
        case CancelRequested():
            step.cancel_requested(d.reason)
        case OrderExpired():
            step.expired()
        case ReservationReport():
            step.reported(d)
    return step.decision()


def expiry(state: OrderState) -> datetime | None:
    """When the sweeper should write order.expired for this order, if ever."""
    if state.phase in (Phase.ALLOCATING, Phase.ALLOCATED):
        return state.deadline
    return None


def skus_of(state: OrderState | None, event: OrderInput) -> frozenset[str]:
    """The SKUs whose snapshot figures deciding `event` may read: the shell loads just these."""
    d = event.data
    if isinstance(d, OrderRequested):
        return frozenset(line.sku for line in d.lines)
    if state is None or state.request is None:
        return frozenset()
    return frozenset(line.sku for line in state.request.lines)


def _noop(state: OrderState | None, message: str) -> OrderDecision:
    return OrderDecision(state, Outcome.NOOP, message=message)


def _requested(
    state: OrderState | None, event: OrderInput, d: OrderRequested, context: Context,
) -> OrderDecision:
    signature = fingerprint(d)
    if state is not None and state.request is not None:
        if state.fingerprint == signature:
            return _noop(state, "order already requested")
        return OrderDecision(state, Outcome.REJECTED, reason="conflict", message=(
            f"order {d.order_id!r} is known with another order.requested body"))
    if (unusable := _unusable_pin(d, context)) is not None:
        # breaks the contract like a malformed line: to the DLQ, nothing reserved, nothing
        # remembered, so a corrected request under the same order_id is judged afresh
        return OrderDecision(state, Outcome.REJECTED, reason="schema_violation",
                             message=unusable)
    held = state or OrderState(d.order_id, Phase.AWAITING)
    deadline = d.expires_at or context.now + context.reservation_ttl
    new = replace(held, phase=Phase.ALLOCATING, request=d, fingerprint=signature,
                  deadline=deadline, requested_at=event.time, requested_by=event.source)
    step = _Step(new, event, context)
    if held.cancel_held:
        step.end("cancelled", held.cancel_reason)
    elif deadline <= context.now:
        step.end("rejected", "expired", line_shorts(d.lines, ()))
    else:
        result = allocate_lines(d, context, d.lines, {})
        if isinstance(result, Shortfall):
            step.end("rejected", "insufficient_stock", result.lines)
        else:
            for line, allocated in zip(d.lines, result.lines, strict=True):
                for part in allocated.parts:
                    step.place(line, part.warehouse, part.quantity, None)
    return step.decision()


def _unusable_pin(d: OrderRequested, context: Context) -> str | None:
    """Why a line pinned to an unregistered or inactive warehouse cannot be requested."""
    registry = {w.code: w for w in context.warehouses}
    for line in d.lines:
        if line.warehouse is None:
            continue
        found = registry.get(line.warehouse)
        if found is None:
            return f"line {line.line_id!r} is pinned to {line.warehouse!r}, which is not a " \
                   "registered warehouse"
        if not found.active:
            return f"line {line.line_id!r} is pinned to {line.warehouse!r}, which is inactive"
    return None


def _before_request(state: OrderState | None, event: OrderInput) -> OrderDecision:
    """A confirm, cancel or expiry of an order not requested (yet), or a reservation event
    of an order the coordinator does not know: remembered (cancel, confirm) or ignored."""
    d = event.data
    held = state or OrderState(event.order_id, Phase.AWAITING)
    if isinstance(d, CancelRequested) and not held.cancel_held:
        return OrderDecision(replace(held, cancel_held=True, cancel_reason=d.reason),
                             Outcome.APPLIED, message="cancel remembered until requested")
    if isinstance(d, ConfirmRequested) and not held.confirm_held and not held.cancel_held:
        return OrderDecision(replace(held, confirm_held=True), Outcome.APPLIED,
                             message="confirm held until the order is allocated")
    if isinstance(d, CancelRequested | ConfirmRequested):
        return _noop(state, "already remembered until the order is requested")
    return _noop(state, "no such order requested")


class _Step:
    """One decision in the making: the order as it changes, and what to send. Values stay
    immutable; only this accumulator, local to one `decide`, changes."""

    def __init__(self, state: OrderState, event: OrderInput, context: Context) -> None:
        self.state = state
        self.event = event
        self.context = context
        self.commands: list[Output] = []
        self.statuses: list[Output] = []
        self.noop = ""

    # --- the decision ------------------------------------------------------------------

    def decision(self) -> OrderDecision:
        if self.noop:
            return _noop(self.state, self.noop)
        self._progress()
        return OrderDecision(self.state, Outcome.APPLIED, tuple(self.commands),
                             tuple(self.statuses))

    @property
    def request(self) -> OrderRequested:
        assert self.state.request is not None  # a _Step is made for known orders
        return self.state.request

    def _set(self, part: OrderPart) -> None:
        self.state = replace(self.state, parts=tuple(
            part if p.id == part.id else p for p in self.state.parts))

    def _line(self, line_id: str) -> RequestedLine:
        return next(ln for ln in self.request.lines if ln.line_id == line_id)

    # --- commands and statuses -----------------------------------------------------------

    def place(self, line: RequestedLine, warehouse: str, quantity: int,
              replaces: str | None) -> None:
        k = 1 + max((p.k for p in self.state.parts if p.line_id == line.line_id), default=0)
        part = OrderPart(line.line_id, k, line.sku, warehouse, quantity, replaces=replaces)
        self.state = replace(self.state, parts=(*self.state.parts, part))
        deadline = self.state.deadline
        assert deadline is not None  # every requested order has one
        self._command("order.placed", part, quantity=quantity, expires_at=deadline.isoformat())

    def _command(self, type_: str, part: OrderPart, **data: Any) -> None:
        self.commands.append(Output(type_, part.key, part.id, {
            "order_id": self.state.order_id, "line_id": part.id, "sku": part.sku,
            "warehouse": part.warehouse, **data}))

    def _status(self, word: str, line: str = "", **data: Any) -> None:
        self.statuses.append(Output(f"order.{word}", self.state.order_id, line, {
            "order_id": self.state.order_id, **data,
            "cause": {"event_id": self.event.id, "type": self.event.type}}))

    def _share(self, part: OrderPart) -> dict[str, Any]:
        return {"warehouse": part.warehouse, "line_id": part.id, "quantity": part.quantity}

    # --- requests --------------------------------------------------------------------

    def confirm_requested(self) -> None:
        phase = self.state.phase
        if phase is Phase.ALLOCATED:
            self.state = replace(self.state, phase=Phase.CONFIRMING)
        elif phase is Phase.ALLOCATING and not self.state.confirm_held:
            self.state = replace(self.state, confirm_held=True)
        elif phase in (Phase.ALLOCATING, Phase.CONFIRMING, Phase.CONFIRMED):
            self.noop = "confirm already requested"
        else:
            self.noop = f"order is {phase.value}: nothing to confirm"

    def cancel_requested(self, reason: str | None) -> None:
        if self.state.phase in _ENDED:
            self.noop = f"order is {self.state.phase.value} already"
        else:
            self.end("cancelled", reason)

    def expired(self) -> None:
        deadline = self.state.deadline
        voided = [p for p in self.state.parts
                  if p.status is PartStatus.PLACED and p.id in self.context.voided]
        if voided:
            for part in voided:
                self._released_unasked(part, PartStatus.RELEASED)
        elif self.state.phase not in (Phase.ALLOCATING, Phase.ALLOCATED):
            self.noop = f"order is {self.state.phase.value}: it no longer expires"
        elif deadline is None or self.context.now < deadline:
            self.noop = "the order's deadline has not passed"
        else:
            self.end("rejected", "expired", line_shorts(self.request.lines, self.state.parts))

    def end(self, status: Literal["rejected", "cancelled"], reason: str | None,
            lines: Sequence[LineShort] = ()) -> None:
        """End the order: release every live part, then send `status` (`_progress`)."""
        ending = Ending(status, reason, tuple(lines))
        self.state = replace(self.state, phase=Phase.RELEASING, ending=ending, moving=(),
                             confirm_held=False)
        for part in self.state.parts:
            if part.status in LIVE and not part.cancel_sent:
                self._set(replace(part, cancel_sent=True))
                self._command("order.cancelled", part, reason=f"order_{ending.status}")

    # --- the processor's verdicts --------------------------------------------------------

    def reported(self, d: ReservationReport) -> None:
        line_id, sep, _ = d.line_id.rpartition(PART_SEPARATOR)
        part = next((p for p in self.state.parts if p.id == d.line_id), None) if sep else None
        if part is None:
            self.noop = f"{line_id or d.line_id!r} is not a part of this order"
            return
        was, status = part.status, _VERDICTS[type(d)]
        if status not in _NEXT[was]:
            self.noop = f"part {part.id} is {was.value} already"
            return
        if status is PartStatus.REJECTED or d.reason == REMEDIATION:
            self._set(replace(part, status=status))
            if not part.cancel_sent:
                self._resource(replace(part, status=status))
        else:
            self._released_unasked(part, status)

    def _released_unasked(self, part: OrderPart, status: PartStatus) -> None:
        """`part` is now `status`; if that is a release the coordinator did not ask for,
        the order ends (`_uncommanded`)."""
        self._set(replace(part, status=status))
        if not part.cancel_sent and status not in HELD:
            self._uncommanded(status)

    def _uncommanded(self, status: PartStatus) -> None:
        """A part released or expired although the coordinator did not ask for it."""
        if self.state.phase not in _UNCONFIRMED:
            return  # ending anyway, or confirmed: never cancelled by the system
        deadline = self.state.deadline
        if status is PartStatus.EXPIRED and deadline is not None and self.context.now >= deadline:
            self.end("rejected", "expired", line_shorts(self.request.lines, self.state.parts))
        else:
            self.end("cancelled", "part_expired" if status is PartStatus.EXPIRED
                     else "part_released")

    def _resource(self, lost: OrderPart) -> None:
        """Find the units of `lost` (rejected or remediated) elsewhere, or end the order."""
        phase = self.state.phase
        if phase not in _UNCONFIRMED:
            return
        after = phase in _AFTER_ALLOCATION
        reason = "stock_lost" if after else "insufficient_stock"
        line = self._line(lost.line_id)
        deadline = self.state.deadline
        if deadline is not None and self.context.now >= deadline:
            self.end("rejected", "expired", line_shorts(self.request.lines, self.state.parts))
            return
        refused = frozenset(p.warehouse for p in self.state.parts
                            if p.line_id == line.line_id and p.status is PartStatus.REJECTED)
        shipping = frozenset(p.warehouse for p in self.state.parts
                             if p.status in LIVE and not p.cancel_sent)
        result = (Shortfall((LineShort(line.line_id, line.sku, lost.quantity, 0),))
                  if line.warehouse is not None else allocate_lines(
                      self.request, self.context,
                      [LineRequest(line.line_id, line.sku, lost.quantity)],
                      {line.line_id: refused}, shipping))
        if isinstance(result, Shortfall):
            self.end("rejected", reason, line_shorts(self.request.lines, self.state.parts,
                                                 line.line_id, result.lines[0].allocatable))
            return
        replaces = None
        if after:
            replaces = lost.replaces if lost.replaces in self.state.moving else lost.id
            if replaces not in self.state.moving:
                self.state = replace(self.state, moving=(*self.state.moving, replaces))
        for part in result.lines[0].parts:
            self.place(line, part.warehouse, part.quantity, replaces)

    # --- what follows from the parts -----------------------------------------------------

    def _progress(self) -> None:
        s = self.state
        if s.phase is Phase.RELEASING:
            if not any(p.status in LIVE for p in s.parts):
                self._ended()
            return
        if s.phase is Phase.ALLOCATING and self._covered():
            self._status("allocated", strategy=self.request.strategy, lines=[
                {"line_id": ln.line_id, "sku": ln.sku, "quantity": ln.quantity,
                 "allocations": [self._share(p) for p in self._held(ln.line_id)]}
                for ln in self.request.lines])
            phase = Phase.CONFIRMING if s.confirm_held else Phase.ALLOCATED
            self.state = replace(self.state, phase=phase, confirm_held=False)
        for moved in self.state.moving:
            self._moved(moved)
        if self.state.phase is Phase.CONFIRMING:
            self._confirm()

    def _held(self, line_id: str, replaces: str | None = None) -> list[OrderPart]:
        return [p for p in self.state.parts if p.line_id == line_id and p.status in HELD
                and (replaces is None or p.replaces == replaces)]

    def _covered(self) -> bool:
        parts = self.state.parts
        return not any(p.status is PartStatus.PLACED for p in parts) and all(
            sum(p.quantity for p in self._held(ln.line_id)) == ln.quantity
            for ln in self.request.lines)

    def _moved(self, moved: str) -> None:
        """order.reallocated once every part re-sourcing `moved` is accepted."""
        lost = next(p for p in self.state.parts if p.id == moved)
        group = [p for p in self.state.parts if p.replaces == moved]
        found = self._held(lost.line_id, moved)
        if any(p.status is PartStatus.PLACED for p in group) \
                or sum(p.quantity for p in found) != lost.quantity:
            return
        self._status("reallocated", moved, line_id=lost.line_id, released=self._share(lost),
                     allocations=[self._share(p) for p in found])
        self.state = replace(self.state, moving=tuple(m for m in self.state.moving
                                                      if m != moved))

    def _confirm(self) -> None:
        for part in self.state.parts:
            if part.status is PartStatus.ACCEPTED and not part.confirm_sent:
                self._set(replace(part, confirm_sent=True))
                self._command("order.confirmed", part)
        s = self.state
        if not s.moving and all(p.status not in LIVE or p.status is PartStatus.CONFIRMED
                                for p in s.parts) and self._covered():
            self._status("confirmed")
            self.state = replace(self.state, phase=Phase.CONFIRMED)

    def _ended(self) -> None:
        ending = self.state.ending
        assert ending is not None  # RELEASING says how it ends
        if ending.status == "rejected":
            self._status("rejected", reason=ending.reason, lines=[
                {"line_id": ln.line_id, "sku": ln.sku, "requested": ln.requested,
                 "allocatable": ln.allocatable} for ln in ending.lines])
            self.state = replace(self.state, phase=Phase.REJECTED)
        else:
            self._status("cancelled", **({} if ending.reason is None
                                         else {"reason": ending.reason}))
            self.state = replace(self.state, phase=Phase.CANCELLED)


_VERDICTS: dict[type[ReservationReport], PartStatus] = {
    Accepted: PartStatus.ACCEPTED, Rejected: PartStatus.REJECTED,
    Confirmed: PartStatus.CONFIRMED, Released: PartStatus.RELEASED,
    Expired: PartStatus.EXPIRED, Fulfilled: PartStatus.FULFILLED,
}
_OVER = frozenset({PartStatus.RELEASED, PartStatus.EXPIRED, PartStatus.FULFILLED})
# The verdicts that move a part on from each status: any other is a redelivery, a no-op.
_NEXT: dict[PartStatus, frozenset[PartStatus]] = {
    PartStatus.PLACED: frozenset({PartStatus.ACCEPTED, PartStatus.REJECTED,
                                  PartStatus.CONFIRMED, *_OVER}),
    PartStatus.ACCEPTED: frozenset({PartStatus.CONFIRMED, *_OVER}),
    PartStatus.CONFIRMED: _OVER,
    **{status: frozenset() for status in PartStatus if status not in LIVE},
}
