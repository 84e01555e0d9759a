"""The write routes (scope `write`): every write becomes events on the input topics, so the
processor stays the only writer of stock.

- Each request's events are validated exactly as the processor would (an invalid one is a
  422 naming its DLQ reason, and nothing is published), then sent in one Kafka transaction:
  all of them or none. The answer is 202 with their ids.
- The events' `source` is `api-key:<the key's name>`: who did it, whatever the body says.
- `Idempotency-Key`: the event ids (and the movement references made from them) derive
  from the key's id and this value, so a retried request carries the same ids and the
  processor counts it as a duplicate instead of moving stock twice.
- `?wait=SECONDS` (up to 30): the answer waits until the processor has applied or
  rejected the events (or the time is up) and says what became of each; for an order,
  each line's reservation status (accepted lines are `pending`, refused ones `rejected`).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request
from pydantic import BaseModel, Field

from stockflow.adapters.db import idempotency, reads
from stockflow.contract.events import envelope
from stockflow.entrypoints.api.auth import Authenticated, Caller, require
from stockflow.entrypoints.api.bodies import (
    Adjustment,
    Count,
    OrderIn,
    Receipt,
    Shipment,
    Transfer,
)
from stockflow.entrypoints.api.models import Problem, problems
from stockflow.entrypoints.api.outcomes import Outcomes
from stockflow.entrypoints.api.sender import Sender

__all__ = ["IdempotencyKey", "claim_idempotency_key", "router"]

_NAMESPACE = uuid.UUID("6f1c3a52-6d0e-4c8e-9d61-2b7f0c1e5a90")  # of idempotent event ids
MAX_WAIT = 30.0
MAX_EVENTS = 1000  # per request

router = APIRouter(prefix="/v1", tags=["writes"], route_class=Authenticated, responses={
    **problems("write"),
    400: {"model": Problem, "description": "the body could not be read (not UTF-8 JSON)"},
    422: {"model": Problem, "description": (
        "invalid, or an Idempotency-Key used before for a different request: nothing was "
        "published (`detail` names the reason)")},
    503: {"model": Problem, "description": (
        "Kafka did not take the events, or the database is busy: nothing was published; "
        "retry with the same Idempotency-Key")},
})
Writer = Annotated[Caller, Depends(require("write"))]
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=200, description=(
    "makes the event ids deterministic: a retry is a counted duplicate; the same key with "
    "a different request is refused (422)"))]
Wait = Annotated[float, Query(ge=0, le=MAX_WAIT, description=(
    "seconds to wait for the processor's outcome (0: answer at once)"))]


class Outcome(BaseModel):
    event_id: str
    outcome: Literal["applied", "noop", "rejected", "pending"] = Field(description=(
        "rejected: refused on the key's state (e.g. an adjustment below zero), sent to the "
        "DLQ; pending: not processed yet when the wait ended"))
    reason: str | None = Field(default=None, description="why it was rejected (DLQ reason: "
                                                         "message)")


class Accepted(BaseModel):
    event_ids: list[str]
    outcomes: list[Outcome] | None = Field(default=None, description="with ?wait only")


class LineStatus(BaseModel):
    line_id: str
    key: str
    status: Literal["pending", "confirmed", "rejected", "released", "expired", "fulfilled",
                    "unprocessed"]
    backordered: bool


class OrderAccepted(Accepted):
    lines: list[LineStatus] | None = Field(default=None, description="with ?wait only")


def _ids(caller: Caller, idempotency_key: str | None, n: int) -> list[str]:
    if idempotency_key is None:
        return [str(uuid.uuid4()) for _ in range(n)]
    return [str(uuid.uuid5(_NAMESPACE, f"{caller.key_id}\n{idempotency_key}\n{i}"))
            for i in range(n)]


async def claim_idempotency_key(request: Request, caller: Caller,
                                idempotency_key: str | None, asked: Any) -> None:
    """Claim the Idempotency-Key for this request (`asked`: what it asks for, as JSON
    values), or answer 422 when the key came with a different request before."""
    if idempotency_key is None:
        return
    canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"), default=str)
    key = f"api:{caller.key_id}:{idempotency_key}"
    try:
        async with request.app.state.pool.connection() as conn:
            await idempotency.claim_async(
                conn, key, idempotency.fingerprint(request.url.path, canonical))
    except idempotency.KeyReused:
        raise HTTPException(422, f"Idempotency-Key {idempotency_key!r} was used before for a "
                                 "different request; send a new request under a new key "
                                 "(nothing was published)") from None


def _docs(caller: Caller, idempotency_key: str | None,
          events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    ids = _ids(caller, idempotency_key, len(events))
    return [envelope(type_, {k: v.isoformat() if isinstance(v, datetime) else v
                             for k, v in data.items() if v is not None},
                     id_=ident, source=f"api-key:{caller.name}")
            for ident, (type_, data) in zip(ids, events, strict=True)]


async def _publish(request: Request, docs: list[dict[str, Any]], wait: float) -> Accepted:
    sender: Sender = request.app.state.sender
    await sender.send(docs)
    ids = [str(d["id"]) for d in docs]
    if not wait:
        return Accepted(event_ids=ids)
    outcomes: Outcomes = request.app.state.outcomes
    done = await outcomes.wait(ids, wait)
    return Accepted(event_ids=ids, outcomes=[
        Outcome(event_id=i, outcome=done[i][0], reason=done[i][1])  # type: ignore[arg-type]
        if i in done else Outcome(event_id=i, outcome="pending") for i in ids])


async def _one(request: Request, caller: Caller, idempotency_key: str | None, wait: float,
               type_: str, body: BaseModel, ref: str | None = None) -> Accepted:
    """One event of `type_` with `body` as its data; `ref`, the movement's reference,
    defaults to the event id."""
    given = body.model_dump()
    await claim_idempotency_key(request, caller, idempotency_key, given)
    docs = _docs(caller, idempotency_key, [(type_, given)])
    docs[0]["data"].pop("phase", None)  # the transfer route's, not the event's
    if ref is not None:
        docs[0]["data"].setdefault(ref, docs[0]["id"])
    return await _publish(request, docs, wait)


@router.post("/receipts", status_code=202, response_model=Accepted)
async def post_receipt(body: Receipt, request: Request, caller: Writer,
                       idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """Goods received: on hand grows; with `unit_cost` and `currency`, the key's average
    unit cost follows."""
    return await _one(request, caller, idempotency_key, wait, "receipt.received", body,
                      "receipt_id")


@router.post("/shipments", status_code=202, response_model=Accepted)
async def post_shipment(body: Shipment, request: Request, caller: Writer,
                        idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """Goods shipped: on hand shrinks (never refused: it happened); with an order id, the
    order's reservations at the key are consumed."""
    return await _one(request, caller, idempotency_key, wait, "shipment.dispatched", body,
                      "shipment_id")


@router.post("/adjustments", status_code=202, response_model=Accepted)
async def post_adjustment(body: Adjustment, request: Request, caller: Writer,
                          idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """On hand changed by `delta` (refused by the processor below zero)."""
    return await _one(request, caller, idempotency_key, wait, "stock.adjusted", body,
                      "adjustment_id")


@router.post("/counts", status_code=202, response_model=Accepted)
async def post_count(body: Count, request: Request, caller: Writer,
                     idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """An absolute count (what external systems sync by): on hand is set to it."""
    return await _one(request, caller, idempotency_key, wait, "stock.counted", body,
                      "count_id")


@router.post("/transfers", status_code=202, response_model=Accepted)
async def post_transfer(body: Transfer, request: Request, caller: Writer,
                        idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """A transfer between warehouses: `dispatched` at the source (the destination sees it
    in transit), then `received` at the destination."""
    phase = body.model_dump()["phase"]
    return await _one(request, caller, idempotency_key, wait, f"transfer.{phase}", body)


@router.post("/orders", status_code=202, response_model=OrderAccepted)
async def post_order(body: OrderIn, request: Request, caller: Writer,
                     idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """Reserve the lines of one order, atomically (all lines are published or none). With
    `?wait`, each line's status: `pending` (reserved) or `rejected` (not enough stock)."""
    lines: list[dict[str, Any]] = []
    for i, given in enumerate((line.model_dump() for line in body.lines), 1):
        lines.append({**given, "order_id": body.order_id, "line_id": given["line_id"] or str(i),
                      "line_count": len(body.lines),
                      "allow_backorder": body.allow_backorder
                      if given["allow_backorder"] is None else given["allow_backorder"],
                      "expires_at": given["expires_at"] or body.expires_at})
    if len({line["line_id"] for line in lines}) != len(lines):
        raise HTTPException(422, "line ids repeat within the order")
    await claim_idempotency_key(request, caller, idempotency_key, lines)
    docs = _docs(caller, idempotency_key, [("order.placed", line) for line in lines])
    accepted = await _publish(request, docs, wait)
    if not wait:
        return OrderAccepted(**accepted.model_dump())
    found: dict[tuple[str, str], dict[str, Any]] = {}
    if any(o.outcome != "pending" for o in accepted.outcomes or []):
        # (skipped when nothing was processed: waiters that time out together would
        # otherwise all ask Postgres at once, while the processor is down)
        async with request.app.state.pool.connection() as conn:
            found = {(r["line_id"], r["key"]): {"status": r["status"],
                                                "backordered": r["backordered"]}
                     for r in await reads.order_lines(conn, body.order_id)}
    statuses = []
    for line in lines:
        key = f"{line['sku']}@{line['warehouse']}"
        got = found.get((line["line_id"], key), {"status": "unprocessed", "backordered": False})
        statuses.append(LineStatus(line_id=line["line_id"], key=key, **got))
    return OrderAccepted(**accepted.model_dump(), lines=statuses)


@router.post("/events", status_code=202, response_model=Accepted)
async def post_events(
    request: Request, caller: Writer,
    body: Annotated[dict[str, Any] | list[dict[str, Any]], Body(description=(
        "one CloudEvents 1.0 event or an array of up to 1000, as on the input topics; "
        "`id` may be left out (then made, or derived from the Idempotency-Key), `source` "
        "is set to the API key"))],
    idempotency_key: IdempotencyKey = None, wait: Wait = 0,
) -> Any:
    """Any input events, validated exactly as the processor would; all are published in
    one transaction, or none."""
    events = body if isinstance(body, list) else [body]
    if not 1 <= len(events) <= MAX_EVENTS:
        raise HTTPException(422, f"send 1 to {MAX_EVENTS} events")
    await claim_idempotency_key(request, caller, idempotency_key, events)
    ids = _ids(caller, idempotency_key, len(events))
    now = datetime.now(UTC).isoformat()
    docs = [{"specversion": "1.0", "time": now, **ev, "id": ev.get("id") or ident,
             "source": f"api-key:{caller.name}"}
            for ev, ident in zip(events, ids, strict=True)]
    return await _publish(request, docs, wait)
