"""The console's orders: the newest orders handed over whole with their phase, and an
order's page (its parts across warehouses, its reservation lines, every status the
coordinator gave it). Lines reserved one by one (`order.placed`) show on the order's page
too, found by its id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from stockflow.adapters.db import reads
from stockflow.entrypoints.api.services import services_of
from stockflow.entrypoints.web.render import page
from stockflow.entrypoints.web.session import Who

__all__ = ["router"]

LISTED = 100
router = APIRouter(prefix="/console/orders", include_in_schema=False)


@router.get("")
async def orders_page(request: Request, who: Who,
                      order_id: Annotated[str | None, Query(max_length=128)] = None) -> Response:
    if order_id:
        return RedirectResponse(f"/console/orders/{order_id}", 303)
    async with services_of(request).pool.connection() as conn:
        rows = await reads.recent_orders(conn, LISTED)
    return page(request, "orders.html", who=who, orders=rows, listed=LISTED)


@router.get("/{order_id}")
async def order_page(request: Request, who: Who, order_id: str) -> Response:
    async with services_of(request).pool.connection() as conn:
        lines = await reads.order_lines(conn, order_id[:128])
        whole = await reads.order(conn, order_id[:128])
    if not lines and whole is None:
        return page(request, "missing.html", 404, who=who,
                    what=f"No order {order_id[:128]} is known (neither handed over whole nor "
                         "reserved line by line).")
    return page(request, "order.html", who=who, order_id=order_id, lines=lines, whole=whole)
