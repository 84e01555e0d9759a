"""A Postgres connection for the relay's coroutines that waits outages out.

A call runs in a worker thread. When it fails with an outage (see
`stockflow.engine.failures.classify`: the server gone, a broken connection, a timeout),
the connection is dropped, and the call is tried again on a new one after 0.2 s, doubling
to 5 s, until it succeeds: the relay keeps its place instead of dying, and whatever it was
writing is written once Postgres is back (each call is one transaction, so a retried call
never half-applies). Any other failure is raised as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

from stockflow.adapters.db.store import Conn
from stockflow.adapters.health import Health
from stockflow.adapters.relay_metrics import RelayMetrics
from stockflow.engine.failures import Failure, classify, describe

__all__ = ["DbLink"]

log = logging.getLogger("stockflow.engine.db_link")

T = TypeVar("T")


class DbLink:
    """One Postgres connection, opened by `connect` and opened again after an outage."""

    def __init__(self, connect: Callable[[], Conn], *, name: str, health: Health,
                 metrics: RelayMetrics, first_delay: float = 0.2,
                 longest_delay: float = 5.0) -> None:
        self.connect, self.name, self.health, self.metrics = connect, name, health, metrics
        self.first_delay, self.longest_delay = first_delay, longest_delay
        self.conn: Conn | None = None

    async def call(self, fn: Callable[[Conn], T], *, give_up: float = 0.0) -> T:
        """`fn(conn)` in a thread, waiting out outages (for at most `give_up` seconds if
        it is not 0, then the last outage's error is raised)."""
        started: float | None = None
        delay = self.first_delay
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = await asyncio.to_thread(self.connect)
                result = await asyncio.to_thread(fn, self.conn)
            except Exception as exc:
                if classify(exc) is not Failure.OUTAGE:
                    raise
                now = time.monotonic()
                if started is None:
                    started = now
                    self.metrics.outages.inc()
                    log.warning("%s: Postgres outage, waiting it out: %s", self.name,
                                describe(exc))
                elif give_up and now - started > give_up:
                    raise
                self.health.db_ok = False
                self.health.tick()  # waiting an outage out is not a stall
                await self.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.longest_delay)
                continue
            if started is not None:
                log.info("%s: Postgres back after %.1f s", self.name, time.monotonic() - started)
            self.health.db_ok = True
            return result

    async def close(self) -> None:
        """Close the connection, if one is open."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await asyncio.to_thread(conn.close)
