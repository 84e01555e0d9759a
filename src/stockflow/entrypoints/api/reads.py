"""The read routes (scope `read`), straight from Postgres."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response

from stockflow.adapters.db import reads
from stockflow.contract.events import split_key
from stockflow.entrypoints.api.auth import Authenticated, Caller, require
from stockflow.entrypoints.api.models import (
    Alerts,
    Ledger,
    Order,
    Problem,
    PurchaseOrder,
    SkuStock,
    Stock,
    StockAt,
    StockPage,
    Totals,
    problems,
)
from stockflow.entrypoints.api.params import InstantParam
from stockflow.entrypoints.api.services import Pool

__all__ = ["KEY_PATTERN", "router"]

_NAME = r"^[A-Za-z0-9._-]{1,64}$"
KEY_PATTERN = r"^[A-Za-z0-9._-]{1,64}@[A-Za-z0-9._-]{1,64}$"  # SKU@WAREHOUSE
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem,
                                                     "description": "not found"}}

router = APIRouter(prefix="/v1", tags=["reads"], route_class=Authenticated,
                   responses=problems("read"))
Reader = Annotated[Caller, Depends(require("read"))]
KeyPath = Annotated[str, Path(pattern=KEY_PATTERN, description="SKU@WAREHOUSE")]
Limit = Annotated[int, Query(ge=1, le=1000, description="items per page")]
KeyCursor = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._@-]{1,129}$",
                                        description="the last page's `next_cursor`")]
VersionCursor = Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$",
                                            description="the last page's `next_cursor`")]


def _etag(version: int) -> str:
    return f'"{version}"'


def _fresh(if_none_match: str | None, etag: str) -> bool:
    """Whether the client's copy (If-None-Match) is current; weak tags compare too."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _totals(rows: list[dict[str, Any]]) -> Totals:
    return Totals(**{f: sum(r[f] for r in rows) for f in Totals.model_fields})


@router.get("/stock/{key}", response_model=Stock, responses={
    **_NOT_FOUND, 304: {"description": "the If-None-Match version is current"}})
async def get_stock(key: KeyPath, pool: Pool, response: Response, _: Reader,
                    if_none_match: Annotated[str | None, Header()] = None) -> Any:
    """One key's stock. Its `ETag` is its version: send it back in `If-None-Match` and an
    unchanged key answers 304 with no body."""
    async with pool.connection() as conn:
        row = await reads.stock(conn, key)
    if row is None:
        raise HTTPException(404, f"no stock recorded for {key}")
    etag = _etag(row["version"])
    if _fresh(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return row


@router.get("/stock", response_model=StockPage)
async def list_stock(
    pool: Pool, _: Reader,
    sku: Annotated[str | None, Query(pattern=_NAME)] = None,
    warehouse: Annotated[str | None, Query(pattern=_NAME)] = None,
    severity: Annotated[str | None, Query(pattern="^(ok|low|out_of_stock)$")] = None,
    limit: Limit = 100, cursor: KeyCursor = None,
) -> Any:
    """Keys in key order, filtered by SKU, warehouse and severity, a page at a time (the
    cursor is the last key listed: pages neither skip nor repeat a key, whatever is
    written meanwhile)."""
    async with pool.connection() as conn:
        rows = await reads.stock_page(conn, sku=sku, warehouse=warehouse, severity=severity,
                                      after=cursor, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": rows[-1]["key"] if more else None}


@router.get("/skus/{sku}", response_model=SkuStock, responses=_NOT_FOUND)
async def get_sku(sku: Annotated[str, Path(pattern=_NAME)], pool: Pool,
                  _: Reader) -> Any:
    """One SKU in every warehouse that has it, with totals."""
    async with pool.connection() as conn:
        rows = await reads.sku(conn, sku)
    if not rows:
        raise HTTPException(404, f"no stock recorded for SKU {sku}")
    return {"sku": sku, "warehouses": rows, "totals": _totals(rows)}


@router.get("/stock/{key}/ledger", response_model=Ledger, responses=_NOT_FOUND)
async def get_ledger(
    key: KeyPath, pool: Pool, _: Reader,
    since: Annotated[InstantParam | None, Query(
        description="happened (event time) at or after")] = None,
    until: Annotated[InstantParam | None, Query(
        description="happened (event time) before")] = None,
    limit: Limit = 100, cursor: VersionCursor = None,
) -> Any:
    """The key's movements, oldest first: each with its cause (event id and type,
    reference, note) and the quantities before and after (the cursor is the last version
    listed)."""
    async with pool.connection() as conn:
        if await reads.stock(conn, key) is None:
            raise HTTPException(404, f"no stock recorded for {key}")
        rows = await reads.ledger(conn, key, since=since, until=until,
                                  after=int(cursor) if cursor else None, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"key": key, "items": rows,
            "next_cursor": str(rows[-1]["version"]) if more else None}


@router.get("/stock/{key}/at", response_model=StockAt, responses=_NOT_FOUND)
async def get_stock_at(key: KeyPath, pool: Pool, _: Reader,
                       time: Annotated[InstantParam, Query()]) -> Any:
    """The key's quantities and average unit cost at a past instant of business time (the
    cause events' own times), from the ledger (time travel)."""
    async with pool.connection() as conn:
        if await reads.stock(conn, key) is None:
            raise HTTPException(404, f"no stock recorded for {key}")
        row = await reads.stock_at(conn, key, time)
    if row is None:  # before the key's first event
        row = {"version": 0, "on_hand": 0, "reserved": 0, "in_transit": 0, "damaged": 0,
               "on_order": 0, "unit_cost": None, "event_time": None, "recorded_at": None}
    return {**row, "key": key, "time": time, "available": row["on_hand"] - row["reserved"]}


@router.get("/orders/{order_id}", response_model=Order, responses=_NOT_FOUND)
async def get_order(order_id: Annotated[str, Path(min_length=1, max_length=128)],
                    pool: Pool, _: Reader) -> Any:
    """The order's lines across keys with their reservation statuses; for an order handed
    over whole, also the coordinator's phase, parts and status history."""
    async with pool.connection() as conn:
        rows = await reads.order_lines(conn, order_id)
        whole = await reads.order(conn, order_id)
    if not rows and whole is None:
        raise HTTPException(404, f"no reservation or order recorded for order {order_id}")
    lines = []
    for r in rows:
        parts = split_key(r["key"])
        sku, warehouse = parts if parts else (r["key"], "")
        lines.append({**r, "sku": sku, "warehouse": warehouse})
    return {"order_id": order_id, "lines": lines, **(whole or {})}


@router.get("/purchase-orders/{po_id}", response_model=PurchaseOrder, responses=_NOT_FOUND)
async def get_purchase_order(po_id: Annotated[str, Path(min_length=1, max_length=128)],
                             pool: Pool, _: Reader) -> Any:
    """A purchase order at every key it was recorded at: each line as placed, received and
    cancelled, and what it still has on order (what the keys' `on_order` counts)."""
    async with pool.connection() as conn:
        keys = await reads.purchase_order(conn, po_id)
    if not keys:
        raise HTTPException(404, f"no purchase order {po_id} recorded")
    return {"po_id": po_id, "keys": keys, "on_order": sum(k["on_order"] for k in keys)}


@router.get("/alerts", response_model=Alerts)
async def list_alerts(pool: Pool, _: Reader,
                      warehouse: Annotated[str | None, Query(pattern=_NAME)] = None,
                      limit: Limit = 100) -> Any:
    """Open low-stock alerts, most critical first: out of stock, then least available."""
    async with pool.connection() as conn:
        return {"items": await reads.alerts(conn, warehouse=warehouse, limit=limit)}
