"""The console (`/console`): its wiring (`install`), sign-in and sign-out, error pages in
words, and the stock pages: the overview, alerts, the stock list and its CSV, a key's
page with its corrections. Each reads Postgres through the same queries as the HTTP API;
what a person may see and do follows their API key's scopes. The other pages have a
module each (imports, orders, reports, dead letters, webhooks, admin)."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, NamedTuple
from urllib.parse import urlencode

from confluent_kafka import KafkaException
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from stockflow.adapters.db import forecasts, idempotency, reads, reports
from stockflow.adapters.publisher import PublishError
from stockflow.entrypoints.api.params import InstantParam
from stockflow.entrypoints.api.services import services_of
from stockflow.entrypoints.web import admin, dead_letters, imports, orders, webhooks
from stockflow.entrypoints.web import reports as reports_pages
from stockflow.entrypoints.web.forecast_panel import forecast_panel
from stockflow.entrypoints.web.headers import ConsoleHeaders
from stockflow.entrypoints.web.health import machinery
from stockflow.entrypoints.web.params import KEY, FormName
from stockflow.entrypoints.web.render import page
from stockflow.entrypoints.web.session import (
    SignInNeeded,
    Visitor,
    Who,
    check_origin,
    check_posted,
    sign_in,
    sign_out,
)
from stockflow.entrypoints.web.stock_chart import Point, stock_svg
from stockflow.usecases.requests import Requester, claim, events_of

__all__ = ["error_page", "install"]

PAGE_SIZE = 50
CORRECTION_WAIT = 5.0  # seconds a correction waits for the processor before its page shows
ALERTS_LISTED = 500
LEDGER_SHOWN = 50  # the newest movements on a key's page
CHART_MOVEMENTS = 2000  # the newest movements its chart draws

router = APIRouter(prefix="/console", include_in_schema=False)


def install(app: FastAPI) -> None:
    """Serve the console from `app`: its pages, its stylesheet and its headers."""
    app.include_router(router)
    app.include_router(imports.router)
    app.include_router(orders.router)
    app.include_router(dead_letters.router)
    app.include_router(webhooks.router)
    app.include_router(admin.router)
    app.include_router(reports_pages.router)
    app.mount("/console/static", StaticFiles(packages=[("stockflow.entrypoints.web",
                                                        "static")]), name="console-static")
    app.add_middleware(ConsoleHeaders)
    app.add_exception_handler(SignInNeeded, _to_sign_in)


_TITLES = {403: "Not allowed", 404: "Not found", 422: "Not understood", 429: "Too many requests"}


def error_page(request: Request, status: int, detail: object) -> Response:
    """An error on a console page, in words on a page rather than as JSON."""
    shown = detail if isinstance(detail, str) else "The request could not be read."
    return page(request, "error.html", status, who=None,
                title=_TITLES.get(status, "Something went wrong"), detail=shown)


async def _to_sign_in(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInNeeded)
    return RedirectResponse(f"/console/sign-in?{urlencode({'next': exc.path})}", 303)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page, never another site."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    return page(request, "sign_in.html", next=_safe_next(next), error=None, who=None)


@router.post("/sign-in")
async def sign_in_posted(request: Request) -> Response:
    check_origin(request)
    form = await request.form()
    token, target = form.get("token"), _safe_next(str(form.get("next") or ""))
    answer = RedirectResponse(target, 303)
    try:
        await sign_in(request, answer, str(token or "").strip())
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        return page(request, "sign_in.html", 401, next=target, who=None,
                    error="That is not a valid API key. Ask an administrator for one "
                          "(stockflow apikeys create).")
    return answer


@router.post("/sign-out")
async def sign_out_posted(request: Request, who: Who) -> Response:
    check_posted(request, who, await request.form())
    answer = RedirectResponse("/console/sign-in", 303)
    await sign_out(request, answer)
    return answer


@router.get("")
async def overview(request: Request, who: Who) -> Response:
    async with services_of(request).pool.connection() as conn:
        warehouses = await reports.run_async(conn, "stock", reports.Filters())
        critical = await reads.alerts(conn, warehouse=None, limit=10)
        oversold = await reads.oversold(conn, 10)
        orders_open = await reads.open_orders(conn)
    behind = await machinery(request)
    for w in warehouses:
        w["healthy"] = w["keys"] - w["low"] - w["out_of_stock"]
    figures = ("keys", "healthy", "low", "out_of_stock", "on_hand", "reserved", "available")
    totals = {f: sum(w[f] for w in warehouses) for f in figures}
    return page(request, "overview.html", who=who, warehouses=warehouses, totals=totals,
                critical=critical, oversold=oversold, orders_open=orders_open,
                machinery=behind, refresh=services_of(request).settings.console_refresh,
                now=datetime.now(UTC))


Severity = Annotated[str | None, Query(pattern="^(|ok|low|out_of_stock)$")]


@router.get("/alerts")
async def alerts(request: Request, who: Who, warehouse: FormName = None) -> Response:
    async with services_of(request).pool.connection() as conn:
        rows = await reads.alerts(conn, warehouse=warehouse or None, limit=ALERTS_LISTED)
    return page(request, "alerts.html", who=who, alerts=rows, warehouse=warehouse or "",
                listed=ALERTS_LISTED)




@router.get("/stock")
async def stock(request: Request, who: Who, sku: FormName = None, warehouse: FormName = None,
                severity: Severity = None,
                after: Annotated[str | None, Query(max_length=129)] = None) -> Response:
    filters = {"sku": sku or None, "warehouse": warehouse or None,
               "severity": severity or None}
    async with services_of(request).pool.connection() as conn:
        rows = await reads.stock_page(conn, sku=None, warehouse=filters["warehouse"],
                                      severity=filters["severity"], after=after or None,
                                      limit=PAGE_SIZE + 1, sku_prefix=filters["sku"])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    asked = {k: v for k, v in filters.items() if v}
    return page(request, "stock.html", who=who, rows=rows, filters=filters,
                query=urlencode(asked),
                next_page=urlencode({**asked, "after": rows[-1]["key"]}) if more else None)


_CSV_COLUMNS = ("key", "sku", "warehouse", "on_hand", "reserved", "available", "in_transit",
                "damaged", "on_order", "reorder_point", "safety_stock", "severity",
                "updated_at")


@router.get("/stock.csv")
async def stock_csv(request: Request, _: Who, sku: FormName = None,
                    warehouse: FormName = None, severity: Severity = None) -> Response:
    pool = services_of(request).pool

    async def lines() -> AsyncIterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(_CSV_COLUMNS)
        after = None
        while True:
            async with pool.connection() as conn:
                rows = await reads.stock_page(conn, sku=None, warehouse=warehouse or None,
                                              severity=severity or None, after=after,
                                              limit=1000, sku_prefix=sku or None)
            for r in rows:
                writer.writerow([r[c] for c in _CSV_COLUMNS])
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if len(rows) < 1000:
                return
            after = rows[-1]["key"]

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="stock.csv"'})


@router.get("/keys/{key}")
async def key_page(request: Request, who: Who, key: str,
                   at: Annotated[InstantParam | None, Query()] = None,
                   event: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    return await _key_view(request, who, key, at=at, event=event)


async def _key_view(request: Request, who: Visitor, key: str, *, status: int = 200,
                    at: datetime | None = None, event: str | None = None,
                    error: str | None = None) -> Response:
    """A key's page; `event`, the id of a correction made from it, shows its outcome."""
    if not KEY.fullmatch(key):
        return page(request, "missing.html", 404, who=who, what="That is not a key "
                    "(SKU@WAREHOUSE).")
    async with services_of(request).pool.connection() as conn:
        row = await reads.stock(conn, key)
        if row is None:
            return page(request, "missing.html", 404, who=who, what=f"No stock is recorded "
                        f"for {key}.")
        newest = await reads.ledger_newest(conn, key, CHART_MOVEMENTS)
        then = await reads.stock_at(conn, key, at) if at is not None else None
        outcome = (await reads.event_outcomes(conn, [event])).get(event) if event else None
        kept = await forecasts.kept_async(conn, key)
    points = [Point(m["event_time"] or m["recorded_at"], m["on_hand_after"],
                    m["reserved_after"]) for m in reversed(newest)]
    now = datetime.now(UTC)
    return page(request, "key.html", status, who=who, stock=row,
                chart=stock_svg(points, now), ledger=newest[:LEDGER_SHOWN],
                movements=len(newest), at=at, then=then, now=now, event=event,
                outcome=outcome, error=error, request_id=secrets.token_urlsafe(16),
                forecast=forecast_panel(kept, row, now) if kept else None)


class _Correction(NamedTuple):
    """A form on a key's page: the event it sends, its whole-number fields, its reference
    field (set to the event's id), and whether it takes a reason."""

    type: str
    numbers: tuple[str, ...]
    reference: str | None
    reason: bool = False


_CORRECTIONS = {
    "count": _Correction("stock.counted", ("on_hand",), "count_id"),
    "adjust": _Correction("stock.adjusted", ("delta",), "adjustment_id", reason=True),
    "thresholds": _Correction("stock.thresholds-set", ("reorder_point", "safety_stock"), None),
}


@router.post("/keys/{key}/{action}")
async def correct(request: Request, who: Who, key: str, action: str) -> Response:
    """A count, an adjustment or new thresholds of the key, as an event from the visitor's
    API key: its id derives from the form's request id, so the same form sent twice moves
    stock once (and sent again with other values, is refused)."""
    form = await request.form()
    check_posted(request, who, form)
    if not who.may("write"):
        raise HTTPException(403, "your API key may look, not correct stock (it lacks "
                                 "`write`)")
    if (wanted := _CORRECTIONS.get(action)) is None or not KEY.fullmatch(key):
        raise HTTPException(404, "no such correction")
    sku, warehouse = key.split("@", 1)
    data: dict[str, object] = {"sku": sku, "warehouse": warehouse}
    try:
        for field in wanted.numbers:
            data[field] = int(str(form.get(field, "")))
    except ValueError:
        return await _key_view(request, who, key, status=422,
                               error="Give a whole number of units.")
    if wanted.reason:
        data["reason"] = str(form.get("reason", "")).strip()
    sent = str(form.get("request_id", ""))[:64]
    requester = Requester(who.caller.key_id, who.caller.name,
                          f"console:{action}:{sent}" if sent else None)
    try:
        await claim(services_of(request).pool, request.url.path, requester, data)
    except idempotency.KeyReused:
        return await _key_view(request, who, key, status=422, error=(
            "This form was sent before with other values; nothing changed. Enter them "
            "again on this fresh page."))
    docs = events_of(requester, [(wanted.type, data)])
    if wanted.reference:
        docs[0]["data"][wanted.reference] = docs[0]["id"]
    try:
        await services_of(request).sender.send(docs)
    except PublishError as exc:
        return await _key_view(request, who, key, status=422 if exc.reason else 503,
                               error=f"Not sent: {exc}. Nothing changed.")
    except KafkaException as exc:
        return await _key_view(request, who, key, status=503,
                               error=f"Kafka did not take it ({exc}); nothing changed. Try "
                                     "again in a moment.")
    await services_of(request).outcomes.wait([docs[0]["id"]], CORRECTION_WAIT)
    return RedirectResponse(f"/console/keys/{key}?{urlencode({'event': docs[0]['id']})}", 303)
