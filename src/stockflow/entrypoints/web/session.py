"""Who is looking at a console page: sign-in with an API key makes a session whose random
token lives in an HttpOnly, SameSite=Strict cookie (Secure over https); Postgres keeps only
its hash. A session lasts while it is used, up to its lifetime, and ends at sign-out or
when its key is revoked.

Every form carries a CSRF token derived from the session's token, so only a page served
to that session can post it; a post whose Origin is another site, or that a browser marks
cross-site, is refused before anything else (SameSite=Strict already keeps the cookie off
such posts: this is the second lock)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Response

from stockflow.adapters.db import sessions
from stockflow.contract.api_keys import token_hash
from stockflow.entrypoints.api.auth import Caller
from stockflow.entrypoints.api.services import services_of

__all__ = ["COOKIE", "SignInNeeded", "Visitor", "Who", "check_origin", "check_posted",
           "sign_in", "sign_out", "visitor"]

COOKIE = "stockflow_console"


class SignInNeeded(Exception):  # noqa: N818 - a redirect, not an error
    """The page needs a session: the visitor is sent to sign in, then back to `path`."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass(frozen=True)
class Visitor:
    """A signed-in person: the API key they signed in with, and their forms' CSRF token."""

    caller: Caller
    csrf: str

    def may(self, scope: str) -> bool:
        """Whether their key holds `scope` (`admin` holds every scope)."""
        return scope in self.caller.scopes or "admin" in self.caller.scopes


def _csrf_of(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"console-csrf", hashlib.sha256).hexdigest()


async def visitor(request: Request) -> Visitor:
    """The signed-in visitor of this request, or `SignInNeeded`."""
    found = await _session(request)
    if found is None:
        raise SignInNeeded(request.url.path + (f"?{request.url.query}" if request.url.query
                                               else ""))
    return found


async def _session(request: Request) -> Visitor | None:
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 100:
        return None
    services = services_of(request)
    settings = services.settings
    async with services.pool.connection() as conn:
        key_id = await sessions.touch(conn, token_hash(token),
                                      idle=settings.console_idle_timeout,
                                      lifetime=settings.console_session_lifetime)
    if key_id is None:
        return None
    key = await services.gate.key(key_id)
    if key is None or key.revoked_at is not None:
        return None
    caller = Caller(key.id, key.name, key.scopes)
    services.gate.spend(caller)
    return Visitor(caller, _csrf_of(token))


Who = Annotated[Visitor, Depends(visitor)]  # a page's signed-in visitor


def check_origin(request: Request) -> None:
    """403 for a post another site's page made."""
    origin = request.headers.get("origin")
    # the host only: behind a proxy that ends TLS the scheme seen here is not the page's
    if request.headers.get("sec-fetch-site") == "cross-site" or (
            origin is not None and urlsplit(origin).netloc != request.headers.get("host")):
        raise HTTPException(403, "a form from another site was refused")


def check_posted(request: Request, who: Visitor, form: Any) -> None:
    """403 unless the post came from a page of this session (see the module's note)."""
    check_origin(request)
    sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, who.csrf):
        raise HTTPException(403, "this form has expired: reload the page and try again")


async def sign_in(request: Request, response: Response, token: str) -> Caller:
    """A session for the API key `token` (401 when it is not a valid key), its cookie set
    on `response`."""
    services = services_of(request)
    caller = await services.gate.caller(token)
    session_token = secrets.token_urlsafe(32)
    async with services.pool.connection() as conn:
        await sessions.start(conn, token_hash(session_token), caller.key_id,
                             services.settings.console_session_lifetime)
    response.set_cookie(COOKIE, session_token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/console",
                        max_age=int(services.settings.console_session_lifetime))
    return caller


async def sign_out(request: Request, response: Response) -> None:
    """The session ends (its token is worthless from now on) and its cookie is cleared."""
    token = request.cookies.get(COOKIE)
    if token:
        async with services_of(request).pool.connection() as conn:
            await sessions.end(conn, token_hash(token))
    response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
