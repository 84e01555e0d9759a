"""What every console answer tells the browser: run no script and load nothing from
elsewhere (the pages have no script at all), never frame the console, keep pages out of
caches (they show stock a person may not be allowed to see later), and send no referrer
elsewhere. And how long the server took to begin the answer (`Server-Timing`, which
browsers' developer tools show and bench/console.py reports)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ConsoleHeaders"]

_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class ConsoleHeaders:
    """Adds the headers to every answer under `/console`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/console"):
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                message["headers"] = [*message.get("headers", []), *_HEADERS,
                                      (b"server-timing", f"app;dur={took:.1f}".encode())]
            await send(message)

        await self.app(scope, receive, send_with_headers)
