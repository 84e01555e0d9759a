"""Send one webhook POST to a checked `Target`, connecting only to its pinned addresses.

One `session()` (one aiohttp session, one connector) is shared by every post of the relay:
keep-alive connections are pooled per (scheme, host, port); optional limits cap sockets in
all and per endpoint (the relay bounds attempts per endpoint itself).
The connector asks no DNS: its resolver answers only for the host of the Target being
posted in the current task (a ContextVar set by `post`, its DNS cache off), with exactly
that Target's addresses, so TLS SNI, certificate checks and `Host` still carry the name.
A pooled connection may be reused by a later post to the same host: its peer is then an
address pinned and checked for an earlier Target of that host, so use one session per
guard Policy (the relay has one).

Never followed: redirects (a 3xx is returned as a status). Never used: environment
proxies, `.netrc`, cookies. At most 64 KiB of a response body is read, then dropped.
Nothing here logs; bodies and headers (which carry signatures) stay with the caller.
"""

from __future__ import annotations

import math
import re
import socket
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from ipaddress import ip_address
from ssl import SSLContext

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from stockflow import __version__
from stockflow.adapters.ssrf import Target

__all__ = ["MAX_READ", "Attempt", "Session", "parse_retry_after", "post", "session"]

MAX_READ = 64 * 1024
_PINNED: ContextVar[Target | None] = ContextVar("stockflow_webhook_target", default=None)


@dataclass(frozen=True)
class Attempt:
    """One POST: the status (None when no response came), `Retry-After` in seconds, the
    elapsed seconds, and why it failed (`timeout`, `refused`, `tls`, `connect`,
    `disconnected`, `protocol`, `unresolved`, `client`) or None."""

    status: int | None
    retry_after: int | None
    elapsed: float
    error: str | None

    @property
    def delivered(self) -> bool:
        """Whether the receiver answered with a 2xx."""
        return self.status is not None and 200 <= self.status < 300


class _PinnedResolver(AbstractResolver):
    """The addresses of the Target `post` is sending in this task, for its host only."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
    ) -> list[ResolveResult]:
        target = _PINNED.get()
        if target is None or host.rstrip(".") != target.host:
            raise OSError(f"no pinned address for {host}")
        found = [ResolveResult(hostname=host, host=str(ip), port=port, family=fam,
                               proto=socket.IPPROTO_TCP,
                               flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
                 for ip in target.addresses
                 if family in (socket.AF_UNSPEC, fam := socket.AF_INET6 if ip.version == 6
                               else socket.AF_INET)]
        if not found:
            raise OSError(f"no pinned address of family {family!r} for {host}")
        return found

    async def close(self) -> None:
        return None


class Session:
    """The shared aiohttp session of `post`, opened by `session()`."""

    def __init__(self, client: aiohttp.ClientSession) -> None:
        self.client = client


@asynccontextmanager
async def session(*, limit: int = 0, limit_per_host: int = 0,
                  ssl: SSLContext | None = None) -> AsyncIterator[Session]:
    """A Session for many posts, closed on exit. The limits (0: none) cap sockets in all
    and per endpoint; the relay bounds attempts itself, so by default they do not. `ssl`
    replaces the default verification context (a private CA)."""
    connector = aiohttp.TCPConnector(resolver=_PinnedResolver(), use_dns_cache=False,
                                     limit=limit, limit_per_host=limit_per_host, ssl=ssl or True)
    async with aiohttp.ClientSession(
            connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False, skip_auto_headers=("Accept-Encoding",),
            headers={"User-Agent": f"stockflow/{__version__}"}) as client:
        yield Session(client)


def parse_retry_after(value: str | None, now: float) -> int | None:
    """`Retry-After` as seconds from `now` (epoch seconds): delta-seconds or an HTTP-date,
    never negative; None when absent or unreadable."""
    value = (value or "").strip()
    if re.fullmatch(r"[0-9]{1,10}", value):
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an asctime date, or -0000: HTTP-dates are in UTC
        when = when.replace(tzinfo=UTC)
    return max(0, math.ceil(when.timestamp() - now))


def _check(target: Target) -> None:
    url = URL(target.url)
    try:
        literal = ip_address(target.host)
    except ValueError:
        literal = None
    if (not target.addresses or (url.scheme, url.raw_host, url.port)
            != (target.scheme, target.host, target.port)
            or (literal is not None and target.addresses != (literal,))):
        raise ValueError("the Target does not match its URL: build it with ssrf.resolve")


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read at most MAX_READ bytes; a longer body closes the connection instead."""
    left = MAX_READ
    while left > 0 and (chunk := await resp.content.read(left)):
        left -= len(chunk)
    if not resp.content.at_eof():
        resp.close()


def _word(exc: aiohttp.ClientError) -> str:
    match exc:
        case aiohttp.ClientSSLError():
            return "tls"
        case aiohttp.ClientConnectorDNSError():
            return "unresolved"
        case aiohttp.ClientConnectorError(os_error=ConnectionRefusedError()):
            return "refused"
        case aiohttp.ClientConnectorError():
            return "connect"
        case aiohttp.ServerDisconnectedError() | ConnectionResetError():
            return "disconnected"
        case aiohttp.ClientResponseError() | aiohttp.ClientPayloadError():
            return "protocol"
    return "client"


async def post(http: Session | None, target: Target, body: bytes,
               headers: Mapping[str, str], timeout: float) -> Attempt:
    """POST `body` to `target` within `timeout` seconds in all (connect, send, response
    headers, the capped body); without a Session, a one-off one is opened and closed.
    Failures to connect or answer are an Attempt's `error`, never raised."""
    if http is None:
        async with session() as own:
            return await post(own, target, body, headers, timeout)
    _check(target)
    token = _PINNED.set(target)
    start = time.monotonic()
    status: int | None = None
    retry_after: int | None = None
    error: str | None = None
    try:
        async with http.client.post(target.url, data=body, headers=headers,
                                    allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            status = resp.status
            retry_after = parse_retry_after(resp.headers.get("Retry-After"), time.time())
            try:
                await _drain(resp)
            except (TimeoutError, aiohttp.ClientError):  # the answer is in: a slow body
                resp.close()  # does not undo it
    except TimeoutError:
        error = "timeout"
    except aiohttp.ClientError as exc:
        error = _word(exc)
    finally:
        _PINNED.reset(token)
    return Attempt(status, retry_after, time.monotonic() - start, error)

