"""A real HTTP receiver for webhook tests: a threaded server on 127.0.0.1 that records every
request, and answers as the test scripts it (per path: a status, a delay, headers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


@dataclass
class Receiver:
    port: int
    host: str = "127.0.0.1"
    got: list[Received] = field(default_factory=list)
    # path -> (nth request of one webhook-id to that path, from 1)
    #      -> (status, delay seconds, headers)
    script: dict[str, Callable[[int], tuple[int, float, dict[str, str]]]] = field(
        default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.path == path]


def _ok(_n: int) -> tuple[int, float, dict[str, str]]:
    return 200, 0.0, {}


@contextmanager
def receiver(host: str = "127.0.0.1") -> Iterator[Receiver]:
    state = Receiver(0, host)
    counts: dict[tuple[str, str], int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = (self.path, headers.get("webhook-id", ""))
            with state.lock:
                state.got.append(Received(self.path, headers, body, time.monotonic()))
                counts[seen] = n = counts.get(seen, 0) + 1
            answer = state.script.get(self.path, _ok)
            status, delay, reply = answer(n)
            if delay:
                time.sleep(delay)
            try:
                self.send_response(status)
                for k, v in reply.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up waiting

        def log_message(self, *_args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # the relay opens dozens of connections at once; with the default backlog of 5 the
        # kernel drops SYNs and an attempt waits a second for the retransmission
        request_queue_size = 256

    server = Server((host, 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
