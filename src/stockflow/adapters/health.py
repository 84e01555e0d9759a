"""`/metrics`, `/healthz` and `/readyz` on one small HTTP server thread."""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stockflow.adapters.broker_watch import BrokerWatch
from stockflow.adapters.ports import explained

__all__ = ["Health", "serve"]

log = logging.getLogger("stockflow.adapters.health")


class Health:
    """Liveness: the loop ticked recently (it keeps ticking while it waits out an outage).
    Readiness: live, partitions assigned, Postgres and a broker reachable, and no batch
    failing right now; `problems()` says what is missing."""

    def __init__(self, stall_after: float = 60.0, brokers: BrokerWatch | None = None) -> None:
        self.stall_after = stall_after
        self.brokers = brokers or BrokerWatch()
        self.last_tick = time.monotonic()
        self.assigned = False
        self.db_ok = False
        self.trouble: str | None = None  # why batches are failing, while they are

    def tick(self) -> None:
        """The loop is alive: called on each of its turns."""
        self.last_tick = time.monotonic()

    def live(self) -> bool:
        """Whether the loop ticked within `stall_after` seconds."""
        return time.monotonic() - self.last_tick < self.stall_after

    def problems(self) -> list[str]:
        """What keeps this process from being ready, one sentence each; none when it is."""
        found = []
        if not self.live():
            found.append("the processing loop is stalled")
        if not self.assigned:
            found.append("no partitions assigned")
        if not self.db_ok:
            found.append("Postgres unreachable")
        if not self.brokers.ok:
            found.append("no Kafka broker reachable")
        if self.trouble:
            found.append(self.trouble)
        return found

    def ready(self) -> bool:
        """Whether nothing keeps this process from being ready."""
        return not self.problems()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002
        # A probe that hangs up before the answer is normal; anything else is worth a line,
        # as JSON like every other log line, never a bare traceback on stderr.
        log.debug("health endpoint client %s went away", client_address, exc_info=True)


def serve(host: str, port: int, registry: CollectorRegistry, health: Health, *,
          setting: str) -> ThreadingHTTPServer:
    """Serve the endpoints on a thread; PortInUseError names `setting` (the port's variable)
    when something else holds `port`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = health.live()
                self._reply(200 if ok else 503, b"ok\n" if ok else b"stalled\n")
            elif self.path == "/readyz":
                problems = health.problems()
                body = "; ".join(problems) if problems else "ready"
                self._reply(503 if problems else 200, f"{body}\n".encode())
            else:
                self._reply(404, b"not found\n")

        def _reply(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                log.debug("health endpoint client hung up before the answer")

        def log_message(self, *_: object) -> None:
            return  # scrapes every few seconds would drown the log

    with explained(port, setting):
        server = _Server((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="stockflow-http", daemon=True).start()
    return server
