"""`/metrics`, `/healthz` and `/readyz` on one small HTTP server thread."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["Health", "serve"]


class Health:
    """Liveness: the loop ticked recently. Readiness: it owns partitions and its last
    Postgres transaction succeeded."""

    def __init__(self, stall_after: float = 60.0) -> None:
        self.stall_after = stall_after
        self.last_tick = time.monotonic()
        self.assigned = False
        self.db_ok = False

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    def live(self) -> bool:
        return time.monotonic() - self.last_tick < self.stall_after

    def ready(self) -> bool:
        return self.live() and self.assigned and self.db_ok


def serve(host: str, port: int, registry: CollectorRegistry, health: Health) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = health.live()
                self._reply(200 if ok else 503, b"ok\n" if ok else b"stalled\n")
            elif self.path == "/readyz":
                ok = health.ready()
                self._reply(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
            else:
                self._reply(404, b"not found\n")

        def _reply(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return  # scrapes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="stockflow-http", daemon=True).start()
    return server
