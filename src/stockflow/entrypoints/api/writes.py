"""The write routes (scope `write`): every write becomes events on the input topics, so the
processor stays the only writer of stock.

- Each request's events are validated exactly as the processor would (an invalid one is a
  422 naming its DLQ reason, and nothing is published), then sent in one Kafka transaction:
  all of them or none. The answer is 202 with their ids.
- The events' `source` is the API key, and their ids derive from an `Idempotency-Key`
  (`stockflow.usecases.requests`): a retried request is a counted duplicate.
- `?wait=SECONDS` (up to 30): the answer waits until the processor has applied or
  rejected the events (or the time is up) and says what became of each; for a whole
  order (`POST /v1/orders`), the order coordinator's first answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from confluent_kafka import KafkaException
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Path, Query, Request
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field, ValidationError

from stockflow.adapters.db import idempotency, reads
from stockflow.adapters.db import warehouses as warehouses_db
from stockflow.adapters.publisher import PublishError
from stockflow.domain.order_inputs import OrderRequested, fingerprint
from stockflow.entrypoints.api.auth import Authenticated, Caller, require
from stockflow.entrypoints.api.bodies import (
    MAX_EVENTS,
    Adjustment,
    Cancel,
    Count,
    OrderRequest,
    PurchaseOrderCancel,
    PurchaseOrderRequest,
    Receipt,
    Shipment,
    Transfer,
)
from stockflow.entrypoints.api.models import Problem, problems
from stockflow.entrypoints.api.services import ApiServices, Services
from stockflow.usecases.requests import Requester, claim, completed, events_of
from stockflow.usecases.sender import Sender

__all__ = ["IdempotencyKey", "claim_idempotency_key", "router"]

MAX_WAIT = 30.0

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
OrderId = Annotated[str, Path(min_length=1, max_length=128, description="the order_id")]
PoId = Annotated[str, Path(min_length=1, max_length=128, description="the po_id")]
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


class OrderAnswer(BaseModel):
    order_id: str
    event_id: str = Field(description="the order.requested event's id")
    status: Literal["allocated", "rejected", "cancelled", "pending"] = Field(description=(
        "the coordinator's first answer: allocated (every line reserved), rejected "
        "(nothing reserved), cancelled (a cancel came first); pending: none yet (without "
        "?wait, or when the wait ended)"))
    reason: str | None = Field(default=None, description=(
        "rejected: insufficient_stock, expired or stock_lost; cancelled: the cancel's"))
    lines: list[dict[str, Any]] | None = Field(default=None, description=(
        "the status event's lines: allocated, each line's allocations {warehouse, line_id, "
        "quantity}; rejected, each line's requested and allocatable units"))


async def claim_idempotency_key(pool: AsyncConnectionPool, path: str, caller: Caller,
                                idempotency_key: str | None, asked: Any) -> None:
    """Claim the Idempotency-Key for this request (`usecases.requests.claim`), or answer
    422 when the key came with a different request before."""
    try:
        await claim(pool, path, Requester(caller.key_id, caller.name, idempotency_key), asked)
    except idempotency.KeyReused:
        raise HTTPException(422, f"Idempotency-Key {idempotency_key!r} was used before for a "
                                 "different request; send a new request under a new key "
                                 "(nothing was published)") from None


def _docs(caller: Caller, idempotency_key: str | None,
          events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return events_of(Requester(caller.key_id, caller.name, idempotency_key), events)


async def _send(sender: Sender, docs: list[dict[str, Any]]) -> None:
    """Publish a request's events in one transaction: 422 for an invalid one (nothing of
    the request is published), 503 when Kafka did not take them."""
    try:
        await sender.send(docs)
    except PublishError as exc:
        if exc.reason is None:
            raise HTTPException(503, f"Kafka did not take the events: {exc}") from None
        raise HTTPException(422, f"{exc} (nothing was published)") from None
    except KafkaException as exc:
        raise HTTPException(503, f"Kafka did not take the events: {exc}") from None


async def _publish(services: Services, docs: list[dict[str, Any]], wait: float) -> Accepted:
    await _send(services.sender, docs)
    ids = [str(d["id"]) for d in docs]
    if not wait:
        return Accepted(event_ids=ids)
    done = await services.outcomes.wait(ids, wait)
    return Accepted(event_ids=ids, outcomes=[
        Outcome(event_id=i, outcome=done[i][0], reason=done[i][1])  # type: ignore[arg-type]
        if i in done else Outcome(event_id=i, outcome="pending") for i in ids])


async def _one(request: Request, services: Services, caller: Caller,
               idempotency_key: str | None, wait: float, type_: str, body: BaseModel,
               ref: str | None = None) -> Accepted:
    """One event of `type_` with `body` as its data; `ref`, the movement's reference,
    defaults to the event id."""
    given = body.model_dump()
    await claim_idempotency_key(services.pool, request.url.path, caller, idempotency_key,
                                given)
    docs = _docs(caller, idempotency_key, [(type_, given)])
    docs[0]["data"].pop("phase", None)  # the transfer route's, not the event's
    if ref is not None:
        docs[0]["data"].setdefault(ref, docs[0]["id"])
    return await _publish(services, docs, wait)


@router.post("/receipts", status_code=202, response_model=Accepted)
async def post_receipt(body: Receipt, request: Request, caller: Writer,
                       services: ApiServices, idempotency_key: IdempotencyKey = None,
                       wait: Wait = 0) -> Any:
    """Goods received: on hand grows; with `unit_cost` and `currency`, the key's average
    unit cost follows."""
    return await _one(request, services, caller, idempotency_key, wait,
                      "receipt.received", body, "receipt_id")


@router.post("/shipments", status_code=202, response_model=Accepted)
async def post_shipment(body: Shipment, request: Request, caller: Writer,
                        services: ApiServices, idempotency_key: IdempotencyKey = None,
                        wait: Wait = 0) -> Any:
    """Goods shipped: on hand shrinks (never refused: it happened); with an order id, the
    order's reservations at the key are consumed."""
    return await _one(request, services, caller, idempotency_key, wait,
                      "shipment.dispatched", body, "shipment_id")


@router.post("/adjustments", status_code=202, response_model=Accepted)
async def post_adjustment(body: Adjustment, request: Request, caller: Writer,
                          services: ApiServices, idempotency_key: IdempotencyKey = None,
                          wait: Wait = 0) -> Any:
    """On hand changed by `delta` (refused by the processor below zero)."""
    return await _one(request, services, caller, idempotency_key, wait,
                      "stock.adjusted", body, "adjustment_id")


@router.post("/counts", status_code=202, response_model=Accepted)
async def post_count(body: Count, request: Request, caller: Writer,
                     services: ApiServices, idempotency_key: IdempotencyKey = None,
                     wait: Wait = 0) -> Any:
    """An absolute count (what external systems sync by): on hand is set to it."""
    return await _one(request, services, caller, idempotency_key, wait,
                      "stock.counted", body, "count_id")


@router.post("/transfers", status_code=202, response_model=Accepted)
async def post_transfer(body: Transfer, request: Request, caller: Writer,
                        services: ApiServices, idempotency_key: IdempotencyKey = None,
                        wait: Wait = 0) -> Any:
    """A transfer between warehouses: `dispatched` at the source (the destination sees it
    in transit), then `received` at the destination."""
    phase = body.model_dump()["phase"]
    return await _one(request, services, caller, idempotency_key, wait,
                      f"transfer.{phase}", body)


@router.post("/orders", status_code=202, response_model=OrderAnswer, responses={
    409: {"model": Problem, "description": "another order is known under this order_id"}})
async def post_order(body: OrderRequest, request: Request, caller: Writer,
                     services: ApiServices, idempotency_key: IdempotencyKey = None,
                     wait: Wait = 0) -> Any:
    """Hand over a whole order: the order coordinator allocates every line across the
    warehouses (by `strategy`; a line with a `warehouse` is pinned there) and reserves all
    of it or nothing. With `?wait`, its answer: `allocated` with each line's allocations,
    or `rejected` with what each line could have had (`pending` if none came in time).
    The same order again is answered as the first time; another order under a known
    `order_id` is a 409. Lines of one key can still be reserved one by one as
    `order.placed` events through `POST /v1/events`."""
    data = body.model_dump(mode="json", exclude_none=True)
    await _check_order(services.pool, data)
    await claim_idempotency_key(services.pool, request.url.path, caller, idempotency_key, data)
    docs = _docs(caller, idempotency_key, [("order.requested", data)])
    await _send(services.sender, docs)
    ident, order_id = str(docs[0]["id"]), str(data["order_id"])
    if not wait:
        return OrderAnswer(order_id=order_id, event_id=ident, status="pending")
    found = (await services.outcomes.wait_orders({order_id: ident}, wait)).get(order_id)
    if found is None:
        return OrderAnswer(order_id=order_id, event_id=ident, status="pending")
    type_, status, refused = found
    if refused is not None:  # dead-lettered by the coordinator (e.g. a conflict seen late)
        raise HTTPException(409 if refused.startswith("conflict") else 422,
                            f"{refused} (the order reserves nothing)")
    assert status is not None
    return OrderAnswer(order_id=order_id, event_id=ident,
                       status=type_.removeprefix("order."),  # type: ignore[arg-type]
                       reason=status.get("reason"), lines=status.get("lines"))


async def _check_order(pool: AsyncConnectionPool, data: dict[str, Any]) -> None:
    """What the coordinator would dead-letter, said now: a line pinned to a warehouse that
    is not registered or not active (422), another order under a known order_id (409)."""
    try:
        asked = fingerprint(OrderRequested.model_validate(data))
    except ValidationError:
        return  # refused when sent, in the coordinator's own words (as the DLQ would say)
    async with pool.connection() as conn:
        registry = {r.warehouse.code: r.warehouse
                    for r in await warehouses_db.listed_async(conn, inactive=True)}
        known = await reads.order_fingerprint(conn, str(data["order_id"]))
    for line in data["lines"]:
        pin = line.get("warehouse")
        if pin is not None and (pin not in registry or not registry[pin].active):
            raise HTTPException(422, f"line {line['line_id']!r} is pinned to {pin!r}, which is "
                                     + ("inactive" if pin in registry else
                                        "not a registered warehouse"))
    if known is not None and known != asked:
        raise HTTPException(409, f"order {data['order_id']!r} is known with another "
                                 "order.requested body (nothing was published)")


@router.post("/orders/{order_id}/confirm", status_code=202, response_model=Accepted)
async def confirm_order(order_id: OrderId, request: Request, caller: Writer,
                        services: ApiServices, idempotency_key: IdempotencyKey = None) -> Any:
    """Confirm every part of an order (held until the order is allocated); the order's
    `order.confirmed` follows once every part is."""
    await claim_idempotency_key(services.pool, request.url.path, caller, idempotency_key,
                                {"confirm": order_id})
    docs = _docs(caller, idempotency_key,
                 [("order.confirm-requested", {"order_id": order_id})])
    return await _publish(services, docs, 0)


@router.post("/orders/{order_id}/cancel", status_code=202, response_model=Accepted)
async def cancel_order(order_id: OrderId, request: Request, caller: Writer,
                       services: ApiServices, body: Annotated[Cancel | None, Body()] = None,
                       idempotency_key: IdempotencyKey = None) -> Any:
    """Release every part of an order (remembered if the order has not come yet); its
    `order.cancelled` follows once every part is released. A confirmed order can still be
    cancelled this way; the system never cancels one by itself."""
    given = {"order_id": order_id, **(body.model_dump(exclude_none=True) if body else {})}
    await claim_idempotency_key(services.pool, request.url.path, caller, idempotency_key,
                                given)
    docs = _docs(caller, idempotency_key, [("order.cancel-requested", given)])
    return await _publish(services, docs, 0)


@router.post("/purchase-orders", status_code=202, response_model=Accepted)
async def post_purchase_order(body: PurchaseOrderRequest, request: Request, caller: Writer,
                              services: ApiServices, idempotency_key: IdempotencyKey = None,
                              wait: Wait = 0) -> Any:
    """Units ordered from a supplier: one `purchase-order.placed` per line, all published
    together or none. Each line's key gains it as `on_order` until receipts naming the
    `po_id` bring it in (or it is cancelled); the reorder suggestions count it. A line
    placed again is a no-op."""
    data = body.model_dump(mode="json", exclude_none=True)
    _distinct_lines(data["lines"])
    await claim_idempotency_key(services.pool, request.url.path, caller, idempotency_key, data)
    docs = _docs(caller, idempotency_key, [("purchase-order.placed", {
        "po_id": data["po_id"], **line}) for line in data["lines"]])
    return await _publish(services, docs, wait)


@router.post("/purchase-orders/{po_id}/cancel", status_code=202, response_model=Accepted,
             responses={404: {"model": Problem, "description": (
                 "no lines named and the purchase order is recorded at no key")}})
async def cancel_purchase_order(
        po_id: PoId, request: Request, caller: Writer, services: ApiServices,
        body: Annotated[PurchaseOrderCancel | None, Body()] = None,
        idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """Cancel what is still open of a purchase order: the lines named, or all of it at
    every key it is recorded at (`GET /v1/purchase-orders/{po_id}`). Units already
    received stay; a line cancelled before it is placed stays cancelled."""
    lines = (body.model_dump(exclude_none=True).get("lines") if body else None)
    if lines is None:
        async with services.pool.connection() as conn:
            known = await reads.purchase_order(conn, po_id)
        if not known:
            raise HTTPException(404, f"no purchase order {po_id} recorded yet: name the "
                                     "lines to cancel (nothing was published)")
        lines = [{"sku": k["sku"], "warehouse": k["warehouse"]} for k in known]
    _distinct_lines(lines)
    await claim_idempotency_key(services.pool, request.url.path, caller, idempotency_key,
                                {"po_id": po_id, "lines": lines})
    docs = _docs(caller, idempotency_key, [("purchase-order.cancelled", {
        "po_id": po_id, **line}) for line in lines])
    return await _publish(services, docs, wait)


def _distinct_lines(lines: list[dict[str, Any]]) -> None:
    """422 for a line named twice in one request: the second would be a silent no-op."""
    seen: set[tuple[str, str, str | None]] = set()
    for line in lines:
        name = (line["sku"], line["warehouse"], line.get("line_id"))
        if name in seen:
            shown = f"line {name[2]!r}" if name[2] else "a line without line_id"
            raise HTTPException(422, f"{shown} at {name[0]}@{name[1]} is named twice "
                                     "(nothing was published)")
        seen.add(name)


@router.post("/events", status_code=202, response_model=Accepted)
async def post_events(
    request: Request, services: ApiServices, caller: Writer,
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
    await claim_idempotency_key(services.pool, request.url.path, caller, idempotency_key,
                                events)
    docs = completed(Requester(caller.key_id, caller.name, idempotency_key), events)
    return await _publish(services, docs, wait)
