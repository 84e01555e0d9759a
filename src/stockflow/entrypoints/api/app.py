"""Composition root of the HTTP API (`stockflow api`): settings in, a FastAPI app served
by uvicorn out, with `/healthz`, `/readyz` and `/metrics` beside the `/v1` routes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial

import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockflow import __version__
from stockflow.adapters.broker_watch import BrokerWatch
from stockflow.adapters.db.store import AsyncConn
from stockflow.adapters.kafka_metrics import KafkaMetrics
from stockflow.adapters.settings import Settings
from stockflow.adapters.signals import stop_on_signals
from stockflow.entrypoints.api import imports, reads, reports, warehouses, writes
from stockflow.entrypoints.api.auth import Gate
from stockflow.entrypoints.api.outcomes import Outcomes
from stockflow.entrypoints.api.services import Services
from stockflow.entrypoints.app import database, migrated_database
from stockflow.entrypoints.web.pages import error_page as console_error
from stockflow.entrypoints.web.pages import install as install_console
from stockflow.usecases.sender import ImportSender, Sender

__all__ = ["build_app", "run_api"]

log = logging.getLogger("stockflow.api")

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Measured:
    """Counts and times every HTTP request by route template, method and status. A plain
    ASGI middleware: Starlette's BaseHTTPMiddleware cost about a fifth of the API's CPU
    per read (a task and a stream per request; measured with py-spy)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("stockflow_http_requests_total",
                                "API requests by route (its template), method and status",
                                ["route", "method", "status"], registry=registry)
        self.seconds = Histogram("stockflow_http_request_duration_seconds",
                                 "API request time, received to answered, by route",
                                 ["route"], buckets=_SECONDS, registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_measured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_measured)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # set by the router
            self.requests.labels(route, scope["method"], str(status)).inc()
            self.seconds.labels(route).observe(time.perf_counter() - started)


def _pool(settings: Settings) -> AsyncConnectionPool:
    schema = sql.SQL("SET search_path TO {}").format(sql.Identifier(settings.database_schema))

    async def configure(conn: AsyncConn) -> None:
        await conn.execute(schema)

    return AsyncConnectionPool(
        settings.dsn(), min_size=1, max_size=settings.api_pool_size, open=False,
        timeout=settings.api_pool_wait, configure=configure,
        kwargs={"autocommit": True, **settings.database_options()})


MAX_HEADER_BYTES = 16 * 1024  # of one request's headers; beyond, 431


class _HeadersBounded:
    """431 for a request whose headers together exceed `MAX_HEADER_BYTES` (the HTTP
    parser takes any size)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and sum(
                len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
            answer = JSONResponse({"detail": f"request headers over {MAX_HEADER_BYTES:,} "
                                             "bytes"}, 431)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _where(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def _invalid(request: Request, exc: Exception) -> Response:
    """422 in the one error shape: `detail` in words, `errors` per field."""
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith("/console"):
        return console_error(request, 422, "Something in the address or the form is not "
                                           "valid: go back and check it.")
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    shown = "; ".join(f"{_where(tuple(e['loc']))}: {e['msg']}" for e in errors[:5])
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return JSONResponse({"detail": f"invalid request: {shown}{more}", "errors": errors}, 422)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed(request: Request) -> str:
    """Every method served at the request's path: Starlette's 405 names only those of the
    first route there, and a path may have a route per method (GET and POST
    /v1/warehouses). Each method is asked of the router as a request would be."""
    return ", ".join(m for m in _METHODS if any(
        route.matches({**request.scope, "method": m})[0] is Match.FULL
        for route in request.app.router.routes))


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own answers, with a body it could not read said in words, and a 405's
    Allow naming every method of the path."""
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/console"):
        return console_error(request, exc.status_code, exc.detail)
    if exc.status_code == 405:
        exc = StarletteHTTPException(405, exc.detail, headers={"Allow": _allowed(request)})
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
        exc = StarletteHTTPException(400, f"the body is not UTF-8 text (byte 0x"
                                          f"{cause.object[cause.start]:02X} at {cause.start}); "
                                          "send UTF-8 JSON")
    elif exc.status_code == 400 and cause is not None:
        exc = StarletteHTTPException(400, f"the body could not be read: {cause}")
    return await http_exception_handler(request, exc)


async def _busy(_: Request, exc: Exception) -> JSONResponse:
    """A resource the request needs is exhausted or unreachable: 503 with Retry-After,
    never a 500, so clients and load balancers back off and retry."""
    if isinstance(exc, PoolTimeout):
        detail, retry = "every database connection is busy; retry shortly", 1
    else:
        detail, retry = "the database is unreachable; retry shortly", 5
    log.warning("answered 503: %s (%s)", detail, type(exc).__name__)
    return JSONResponse({"detail": detail}, 503, headers={"Retry-After": str(retry)})


def build_app(settings: Settings) -> FastAPI:
    """The API app; its pool opens when the server starts and closes when it stops."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    pool = _pool(settings)
    # the publishers' Kafka errors, counted; an outage said once (readiness is Postgres':
    # reads need no broker, and a write answers 503 while none answers)
    kafka = KafkaMetrics(registry)
    watch = BrokerWatch(counted=kafka.error, reachable=kafka.reachable)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Services]]:
        await pool.open(wait=False)
        services = Services(
            settings=settings, pool=pool,
            gate=Gate(pool, settings.api_rate_limit, settings.api_rate_burst),
            sender=Sender(settings, watch),
            import_sender=ImportSender(settings, partial(database, settings), watch),
            outcomes=Outcomes(pool))
        try:
            yield {"services": services}  # every request's state: see `services_of`
        finally:
            await services.outcomes.close()
            await asyncio.to_thread(services.sender.close)
            await asyncio.to_thread(services.import_sender.close)
            await pool.close()

    app = FastAPI(title="stockflow", version=__version__, lifespan=lifespan,
                  description="Stock of every item in every warehouse: read it, change it by "
                              "events. Authenticate with `Authorization: Bearer <API key>`.")
    app.include_router(reads.router)
    app.include_router(writes.router)
    app.include_router(imports.router)
    app.include_router(reports.router)
    app.include_router(warehouses.router)
    install_console(app)

    app.add_middleware(_HeadersBounded)
    app.add_middleware(_Measured, registry=registry)  # outermost: it counts every answer
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PoolTimeout, _busy)
    app.add_exception_handler(psycopg.OperationalError, _busy)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> PlainTextResponse:
        try:
            async with asyncio.timeout(2):
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
            return PlainTextResponse(f"Postgres unreachable: {type(exc).__name__}\n", 503)
        return PlainTextResponse("ready\n")

    @app.get("/metrics", include_in_schema=False)
    async def metrics_page() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def run_api(settings: Settings) -> None:
    """Serve the API until SIGTERM or SIGINT: the requests in flight are answered, then it
    exits 0 (uvicorn alone would re-raise the signal and die by it)."""
    import uvicorn  # noqa: PLC0415 - the other commands stay quick to start

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            with stop_on_signals(then=self.stop):
                yield

        def stop(self) -> None:
            self.should_exit = True

    migrated_database(settings).close()
    log.info("API on http://%s:%d (docs at /docs)", settings.api_host, settings.api_port)
    config = uvicorn.Config(build_app(settings), host=settings.api_host,
                            port=settings.api_port, log_config=None, access_log=False,
                            loop="uvloop", http="httptools", server_header=False)
    Server(config).run()
