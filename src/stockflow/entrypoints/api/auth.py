"""Who is calling: `Authorization: Bearer <token>` checked against the stored hash of an
API key, its scopes, and a per-key rate limit.

- 401 (with `WWW-Authenticate: Bearer`) for a missing, malformed, unknown, wrong or revoked
  token; the answer does not say which, and the comparison takes constant time.
- 403 for a key without the route's scope; `admin` holds every scope.
- 429 with `Retry-After` once a key spends its burst faster than its rate refills it.
A key's row is cached for `KEY_TTL` seconds, so a revocation takes effect within that.
Tokens are never logged: they live in one header and this module only.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from stockflow.adapters.db import api_keys
from stockflow.contract.api_keys import parse, token_matches
from stockflow.entrypoints.api.services import services_of

__all__ = ["KEY_TTL", "Authenticated", "Caller", "Gate", "require"]

KEY_TTL = 5.0  # seconds a key's row is trusted before it is read again

_bearer = HTTPBearer(auto_error=False, description="an API key: `stockflow apikeys create`")


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: its key's id and name, and the key's scopes."""

    key_id: str
    name: str  # recorded as the actor of its writes
    scopes: frozenset[str]


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Gate:
    """Authentication and rate limits for one API process."""

    pool: AsyncConnectionPool
    rate: float  # requests/s a key may sustain
    burst: int  # requests a key may make at once
    known: dict[str, tuple[float, asyncio.Future[api_keys.ApiKey | None]]] = field(
        default_factory=dict)
    buckets: dict[str, _Bucket] = field(default_factory=dict)

    async def caller(self, token: str | None) -> Caller:
        """The caller of `token`, or 401 when it is not a valid, unrevoked key."""
        key_id = parse(token) if token else None
        key = await self.key(key_id) if key_id else None
        if token is None or key is None or key.revoked_at is not None \
                or not token_matches(token, key.token_hash):
            raise HTTPException(401, "a valid API key is required: Authorization: Bearer "
                                "<token>", headers={"WWW-Authenticate": "Bearer"})
        return Caller(key.id, key.name, key.scopes)

    def spend(self, caller: Caller) -> None:
        """Take one request from the key's bucket, or answer 429."""
        now = time.monotonic()
        b = self.buckets.setdefault(caller.key_id, _Bucket(self.burst, now))
        b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate)
        b.at = now
        if b.tokens < 1:
            wait = math.ceil((1 - b.tokens) / self.rate)
            raise HTTPException(429, f"rate limit of {self.rate:g} requests/s exceeded",
                                headers={"Retry-After": str(max(1, wait))})
        b.tokens -= 1

    async def key(self, key_id: str) -> api_keys.ApiKey | None:
        """The key's row, read at most once per `KEY_TTL`: requests that arrive together
        share one read (a burst of a new key's requests would otherwise each take a pooled
        connection for the same row)."""
        now = time.monotonic()
        cached = self.known.get(key_id)
        if cached is not None and now - cached[0] < KEY_TTL:
            return await asyncio.shield(cached[1])  # a caller that goes away cancels no one
        if len(self.known) > 10_000:  # unknown ids are cached too: keep it bounded
            self.known.clear()
        read = asyncio.ensure_future(self._read(key_id))
        self.known[key_id] = (now, read)
        try:
            return await asyncio.shield(read)
        except BaseException:
            if self.known.get(key_id, (0.0, None))[1] is read:
                del self.known[key_id]  # a failed read is not remembered
            raise

    async def _read(self, key_id: str) -> api_keys.ApiKey | None:
        async with self.pool.connection() as conn:
            return await api_keys.find(conn, key_id)


def require(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the authenticated caller, who holds `scope` and is within its rate.
    On a route of an `Authenticated` router the check has already run, before the body
    was read; the dependency also declares the bearer scheme in the OpenAPI document."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Caller:
        known = getattr(request.state, "caller", None)
        if isinstance(known, Caller):
            return known
        return await _check(request, scope,
                            credentials.credentials if credentials else None)

    dependency.scope = scope  # type: ignore[attr-defined]
    return dependency


async def _check(request: Request, scope: str, token: str | None) -> Caller:
    gate = services_of(request).gate
    caller = await gate.caller(token)
    if scope not in caller.scopes and "admin" not in caller.scopes:
        raise HTTPException(403, f"this API key lacks the {scope!r} scope")
    gate.spend(caller)
    return caller


def _scope_of(dependant: Dependant) -> str | None:
    for dep in dependant.dependencies:
        scope = getattr(dep.call, "scope", None)
        if isinstance(scope, str):
            return scope
    return None


class Authenticated(APIRoute):
    """A route that checks its caller (see `require`) before FastAPI reads and validates
    the body: without a valid key the answer is 401 and with a key lacking the scope 403,
    whatever the body holds (a malformed one too), and an unauthenticated caller learns
    nothing of what the route would accept."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, behind the check of its caller and scope."""
        handler = super().get_route_handler()
        scope = _scope_of(self.dependant)
        if scope is None:
            return handler

        async def authenticated(request: Request) -> Response:
            credentials = await _bearer(request)
            request.state.caller = await _check(
                request, scope, credentials.credentials if credentials else None)
            return await handler(request)

        return authenticated
