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

import asyncio
import logging
import queue
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

from confluent_kafka import KafkaException
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request
from pydantic import BaseModel, Field

from stockflow.adapters.broker_watch import BrokerWatch
from stockflow.adapters.db import reads
from stockflow.adapters.db.store import AsyncConn
from stockflow.contract.events import envelope
from stockflow.domain.inputs import Delta, Ident, Instant, Level, Name, Note, Quantity
from stockflow.entrypoints.api.auth import Caller, require
from stockflow.entrypoints.api.models import Problem
from stockflow.publisher import Publisher, PublishError
from stockflow.settings import Settings

__all__ = ["Sender", "router"]

log = logging.getLogger("stockflow.api")
_NAMESPACE = uuid.UUID("6f1c3a52-6d0e-4c8e-9d61-2b7f0c1e5a90")  # of idempotent event ids
MAX_WAIT = 30.0
MAX_EVENTS = 1000  # per request

router = APIRouter(prefix="/v1", tags=["writes"], responses={
    401: {"model": Problem, "description": "no valid API key"},
    403: {"model": Problem, "description": "the key lacks the `write` scope"},
    422: {"description": "invalid: nothing was published (`detail` names the reason)"},
    429: {"model": Problem, "description": "rate limit exceeded; see Retry-After"},
    503: {"model": Problem, "description": "Kafka did not take the events: nothing was "
                                           "published; retry with the same Idempotency-Key"},
})
Writer = Annotated[Caller, Depends(require("write"))]
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=200, description=(
    "makes the event ids deterministic: a retry is a counted duplicate"))]
Wait = Annotated[float, Query(ge=0, le=MAX_WAIT, description=(
    "seconds to wait for the processor's outcome (0: answer at once)"))]


class _Job(NamedTuple):
    docs: list[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]


class Sender:
    """The API's transactional publisher, with group commit: the requests that arrive while
    one Kafka transaction commits go out together in the next. Each request's events are in
    one transaction, so a request is still all or none; a transaction that fails fails
    every request in it (503: a retry with the same Idempotency-Key is safe). One at a time,
    a transaction per request capped writes at ~30/s (the commit's round trips; measured).
    """

    def __init__(self, settings: Settings, watch: BrokerWatch | None = None) -> None:
        self.publisher = Publisher(settings, source="stockflow-api", watch=watch)
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.worker = threading.Thread(target=self._work, name="api-sender", daemon=True)
        self.worker.start()

    async def send(self, docs: list[dict[str, Any]]) -> None:
        """Validate the events as the processor would and publish them in a transaction;
        422 for an invalid one (nothing of the request is published), 503 when Kafka did
        not take them."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self.jobs.put(_Job(docs, loop, done))
        try:
            await done
        except PublishError as exc:
            if exc.reason is None:
                raise HTTPException(503, f"Kafka did not take the events: {exc}") from None
            raise HTTPException(422, f"{exc} (nothing was published)") from None
        except KafkaException as exc:
            raise HTTPException(503, f"Kafka did not take the events: {exc}") from None

    def _work(self) -> None:
        try:
            self.publisher.ready_transactions()
        except KafkaException as exc:  # Kafka is down: the first request's transaction retries
            log.warning("Kafka transactions not ready yet: %s", exc)
        while (first := self.jobs.get()) is not None:
            batch, closing = [first], False
            while not closing:
                try:
                    more = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                else:
                    batch.append(more)
            self._transact(batch)
            if closing:
                return

    def _transact(self, batch: list[_Job]) -> None:
        """One transaction for every valid request of `batch`; the invalid ones fail alone."""
        messages, invalid = [], {}
        for i, job in enumerate(batch):  # validated here, off the event loop
            try:
                messages.extend([self.publisher.prepare(doc) for doc in job.docs])
            except PublishError as exc:
                invalid[i] = exc
        failed: BaseException | None = None
        if messages:
            try:
                self.publisher.transact(messages)
            except Exception as exc:  # noqa: BLE001 - handed to every request of the batch
                failed = exc
        for i, job in enumerate(batch):
            job.loop.call_soon_threadsafe(_settle, job.done, invalid.get(i, failed))

    def close(self) -> None:
        self.jobs.put(None)
        self.worker.join()
        self.publisher.close()


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.cancelled():  # the client went away; its events may still have been published
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


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


class _AtKey(BaseModel):
    sku: Name
    warehouse: Name


class Receipt(_AtKey):
    quantity: Quantity
    receipt_id: Ident | None = Field(default=None, description="default: the event id")
    line_id: Ident | None = None
    po_id: Ident | None = None


class Shipment(_AtKey):
    quantity: Quantity
    shipment_id: Ident | None = Field(default=None, description="default: the event id")
    line_id: Ident | None = None
    order_id: Ident | None = None


class Adjustment(_AtKey):
    delta: Delta
    reason: Note
    adjustment_id: Ident | None = Field(default=None, description="default: the event id")


class Count(_AtKey):
    on_hand: Level = Field(description="the absolute count: on hand is set to it")
    count_id: Ident | None = Field(default=None, description="default: the event id")


class Transfer(_AtKey):
    phase: Literal["dispatched", "received"] = Field(description=(
        "dispatched: leaves `warehouse` for `to_warehouse`; received: arrives at "
        "`warehouse`"))
    quantity: Quantity
    transfer_id: Ident
    to_warehouse: Name | None = Field(default=None, description="with phase dispatched")


class OrderLineIn(_AtKey):
    quantity: Quantity
    line_id: Ident | None = Field(default=None, description="default: its position, from 1")


class OrderIn(BaseModel):
    order_id: Ident
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)
    expires_at: Instant | None = None
    allow_backorder: bool = False


def _ids(caller: Caller, idempotency_key: str | None, n: int) -> list[str]:
    if idempotency_key is None:
        return [str(uuid.uuid4()) for _ in range(n)]
    return [str(uuid.uuid5(_NAMESPACE, f"{caller.key_id}\n{idempotency_key}\n{i}"))
            for i in range(n)]


def _docs(caller: Caller, idempotency_key: str | None,
          events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    ids = _ids(caller, idempotency_key, len(events))
    return [envelope(type_, {k: v for k, v in data.items() if v is not None}, id_=ident,
                     source=f"api-key:{caller.name}")
            for ident, (type_, data) in zip(ids, events, strict=True)]


async def _outcomes(conn: AsyncConn, ids: list[str], wait: float) -> list[Outcome]:
    """Each event's outcome once all are applied or rejected, or when `wait` ends."""
    deadline = time.monotonic() + wait
    while True:
        done = await reads.event_outcomes(conn, ids)
        if len(done) == len(ids) or time.monotonic() >= deadline:
            return [Outcome(event_id=i, outcome=done[i][0], reason=done[i][1])  # type: ignore[arg-type]
                    if i in done else Outcome(event_id=i, outcome="pending") for i in ids]
        await asyncio.sleep(0.02)


async def _publish(request: Request, docs: list[dict[str, Any]], wait: float) -> Accepted:
    sender: Sender = request.app.state.sender
    await sender.send(docs)
    ids = [str(d["id"]) for d in docs]
    if not wait:
        return Accepted(event_ids=ids)
    async with request.app.state.pool.connection() as conn:
        return Accepted(event_ids=ids, outcomes=await _outcomes(conn, ids, wait))


async def _one(request: Request, caller: Caller, idempotency_key: str | None, wait: float,
               type_: str, ref: str, body: BaseModel) -> Accepted:
    docs = _docs(caller, idempotency_key, [(type_, body.model_dump())])
    docs[0]["data"].setdefault(ref, docs[0]["id"])  # the reference defaults to the event id
    return await _publish(request, docs, wait)


@router.post("/receipts", status_code=202, response_model=Accepted)
async def post_receipt(body: Receipt, request: Request, caller: Writer,
                       idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """Goods received: on hand grows."""
    return await _one(request, caller, idempotency_key, wait, "receipt.received",
                      "receipt_id", body)


@router.post("/shipments", status_code=202, response_model=Accepted)
async def post_shipment(body: Shipment, request: Request, caller: Writer,
                        idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """Goods shipped: on hand shrinks (never refused: it happened); with an order id, the
    order's reservations at the key are consumed."""
    return await _one(request, caller, idempotency_key, wait, "shipment.dispatched",
                      "shipment_id", body)


@router.post("/adjustments", status_code=202, response_model=Accepted)
async def post_adjustment(body: Adjustment, request: Request, caller: Writer,
                          idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """On hand changed by `delta` (refused by the processor below zero)."""
    return await _one(request, caller, idempotency_key, wait, "stock.adjusted",
                      "adjustment_id", body)


@router.post("/counts", status_code=202, response_model=Accepted)
async def post_count(body: Count, request: Request, caller: Writer,
                     idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """An absolute count (what external systems sync by): on hand is set to it."""
    return await _one(request, caller, idempotency_key, wait, "stock.counted", "count_id",
                      body)


@router.post("/transfers", status_code=202, response_model=Accepted)
async def post_transfer(body: Transfer, request: Request, caller: Writer,
                        idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """A transfer between warehouses: `dispatched` at the source (the destination sees it
    in transit), then `received` at the destination."""
    data = body.model_dump(exclude={"phase"})
    if body.phase == "received":
        data.pop("to_warehouse")
    elif not body.to_warehouse:
        raise HTTPException(422, "a dispatched transfer needs to_warehouse")
    docs = _docs(caller, idempotency_key, [(f"transfer.{body.phase}", data)])
    return await _publish(request, docs, wait)


@router.post("/orders", status_code=202, response_model=OrderAccepted)
async def post_order(body: OrderIn, request: Request, caller: Writer,
                     idempotency_key: IdempotencyKey = None, wait: Wait = 0) -> Any:
    """Reserve the lines of one order, atomically (all lines are published or none). With
    `?wait`, each line's status: `pending` (reserved) or `rejected` (not enough stock)."""
    expires = body.expires_at.isoformat() if body.expires_at else None
    lines: list[dict[str, Any]] = [
        {"order_id": body.order_id, "line_id": line.line_id or str(i), "sku": line.sku,
         "warehouse": line.warehouse, "quantity": line.quantity,
         "line_count": len(body.lines), "allow_backorder": body.allow_backorder,
         "expires_at": expires}
        for i, line in enumerate(body.lines, 1)]
    if len({line["line_id"] for line in lines}) != len(lines):
        raise HTTPException(422, "line ids repeat within the order")
    docs = _docs(caller, idempotency_key, [("order.placed", line) for line in lines])
    accepted = await _publish(request, docs, wait)
    if not wait:
        return OrderAccepted(**accepted.model_dump())
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
    ids = _ids(caller, idempotency_key, len(events))
    now = datetime.now(UTC).isoformat()
    docs = [{"specversion": "1.0", "time": now, **ev, "id": ev.get("id") or ident,
             "source": f"api-key:{caller.name}"}
            for ev, ident in zip(events, ids, strict=True)]
    return await _publish(request, docs, wait)
