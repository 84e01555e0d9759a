"""Report routes (scope `read`): `stockflow report` over HTTP, computed in Postgres."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from stockflow.adapters.db import reports
from stockflow.entrypoints.api.auth import Authenticated, Caller, require
from stockflow.entrypoints.api.models import problems
from stockflow.entrypoints.api.params import InstantParam
from stockflow.entrypoints.api.services import Pool

__all__ = ["router"]

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=Authenticated,
                   responses=problems("read"))
Reader = Annotated[Caller, Depends(require("read"))]
Warehouse = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


class WarehouseStock(BaseModel):
    warehouse: str
    keys: int
    on_hand: int
    reserved: int
    available: int
    in_transit: int
    damaged: int
    low: int
    out_of_stock: int


class LowKey(BaseModel):
    key: str
    warehouse: str
    severity: Literal["low", "out_of_stock"]
    available: int
    reorder_point: int
    safety_stock: int
    on_hand: int
    reserved: int


class Movements(BaseModel):
    warehouse: str
    event_type: str
    movements: int
    units_in: int
    units_out: int
    net_units: int
    value_in: Decimal | None
    value_out: Decimal | None
    net_value: Decimal | None = Field(description="the value of the units moved, where a "
                                                  "cost was known; decimal strings")


class Valuation(BaseModel):
    warehouse: str
    currency: str | None = Field(description="null: the keys no receipt has costed yet")
    keys: int
    on_hand: int
    value: Decimal | None = Field(description="on hand times each key's average unit cost")
    average_unit_cost: Decimal | None


async def _run(pool: AsyncConnectionPool, report: str, filters: reports.Filters) -> Any:
    async with pool.connection() as conn:
        return await reports.run_async(conn, report, filters)


@router.get("/stock", response_model=list[WarehouseStock])
async def stock_report(pool: Pool, _: Reader, warehouse: Warehouse = None) -> Any:
    """Stock by warehouse: keys, quantity totals, and how many keys are low or out."""
    return await _run(pool, "stock", reports.Filters(warehouse))


@router.get("/stock/low", response_model=list[LowKey])
async def low_stock_report(pool: Pool, _: Reader, warehouse: Warehouse = None) -> Any:
    """The low and out-of-stock keys, out of stock first, then the least available."""
    return await _run(pool, "stock", reports.Filters(warehouse, low_only=True))


@router.get("/movements", response_model=list[Movements])
async def movements_report(
    pool: Pool, _: Reader, warehouse: Warehouse = None,
    since: Annotated[InstantParam | None, Query(description="event time, at or after")] = None,
    until: Annotated[InstantParam | None, Query(description="event time, before")] = None,
) -> Any:
    """Movements by warehouse and event type over a period of business time: how many,
    and the units in, out and net (on hand)."""
    return await _run(pool, "movements", reports.Filters(warehouse, since, until))


@router.get("/valuation", response_model=list[Valuation])
async def valuation_report(
    pool: Pool, _: Reader, warehouse: Warehouse = None,
    until: Annotated[InstantParam | None, Query(
        description="as of just before this instant of event time; now when absent")] = None,
) -> Any:
    """Valuation by warehouse and currency: on-hand units times each key's perpetual
    weighted-average unit cost, now or as of a past instant."""
    return await _run(pool, "valuation", reports.Filters(warehouse, until=until))
