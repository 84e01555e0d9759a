"""What the processor made of the events requests wait for (`?wait`), and the order
coordinator's first answer to whole orders, found by one poller per API process.

A request that waits holds no Postgres connection: it registers its event ids and sleeps.
While anyone waits, the poller asks Postgres once a tick for every id still unresolved,
with one short-lived pooled connection, and wakes each request whose events are all done.
So 100 checkouts waiting on a stopped processor cost one query every `TICK`, and reads
keep the rest of the pool (a connection per waiter exhausted a pool of 10 and turned reads
into 500s). A failed poll (Postgres restarting, the pool busy) is retried on the next
tick; the waiters' own deadlines bound the wait, never the database's state.

Polling was chosen over LISTEN/NOTIFY from the processor's transaction: it needs no
dedicated connection per API process, nothing on the processor's hot path, and no
re-subscription after Postgres restarts; its cost is one indexed query a tick, and only
while a request waits.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from stockflow.adapters.db import reads

__all__ = ["TICK", "Outcomes"]

log = logging.getLogger("stockflow.api")

TICK = 0.02  # seconds between polls while requests wait: a checkout's answer comes this soon
_FAILED_POLL_PAUSE = 0.5  # seconds after a failed poll, so an outage is not hammered

Found = dict[str, tuple[str, str | None]]  # event id -> (outcome, rejection reason)


Answer = tuple[str, dict[str, Any] | None, str | None]  # see `reads.order_answers`


@dataclass(eq=False)
class _Waiter:
    ids: frozenset[str]
    found: Found = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class _OrderWaiter:
    requests: dict[str, str]  # order id -> the request's event id
    found: dict[str, Answer] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Outcomes:
    """The outcomes of events by id, waited for without holding a connection."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.waiters: set[_Waiter] = set()
        self.order_waiters: set[_OrderWaiter] = set()
        self.poller: asyncio.Task[None] | None = None
        self.failing = False  # logged once when polls start failing, once when they recover

    async def wait(self, ids: list[str], timeout: float) -> Found:
        """The outcomes of `ids` once all are known, or those known after `timeout`
        seconds (the others are missing from the answer)."""
        waiter = _Waiter(frozenset(ids))
        await self._held(self.waiters, waiter, timeout)
        return dict(waiter.found)

    async def wait_orders(self, requests: dict[str, str], timeout: float) -> dict[str, Answer]:
        """The coordinator's first answer to each order (order id -> its request's event
        id) once all have one, or those known after `timeout` seconds."""
        waiter = _OrderWaiter(dict(requests))
        await self._held(self.order_waiters, waiter, timeout)
        return dict(waiter.found)

    async def _held(self, waiters: set[Any], waiter: _Waiter | _OrderWaiter,
                    timeout: float) -> None:
        """Until the poller has resolved `waiter`, or `timeout` seconds."""
        waiters.add(waiter)
        if self.poller is None or self.poller.done():
            self.poller = asyncio.create_task(self._poll(), name="api-outcomes")
        try:
            async with asyncio.timeout(timeout):
                await waiter.done.wait()
        except TimeoutError:
            pass
        finally:
            waiters.discard(waiter)

    async def _poll(self) -> None:
        while self.waiters or self.order_waiters:
            wanted = {i for w in self.waiters for i in w.ids - w.found.keys()}
            orders = {o: i for w in self.order_waiters for o, i in w.requests.items()
                      if o not in w.found}
            try:
                async with self.pool.connection() as conn:
                    found = await reads.event_outcomes(conn, sorted(wanted)) if wanted else {}
                    answers = await reads.order_answers(conn, orders) if orders else {}
            except Exception as exc:  # noqa: BLE001 - waiters time out on their own
                if not self.failing:
                    log.warning("cannot read event outcomes, retrying: %s", exc)
                    self.failing = True
                await asyncio.sleep(_FAILED_POLL_PAUSE)
                continue
            if self.failing:
                log.warning("event outcomes readable again")
                self.failing = False
            for w in list(self.waiters):
                w.found.update((i, found[i]) for i in w.ids & found.keys())
                if len(w.found) == len(w.ids):
                    w.done.set()
                    self.waiters.discard(w)
            for o in list(self.order_waiters):
                o.found.update((i, answers[i]) for i in o.requests.keys() & answers.keys())
                if len(o.found) == len(o.requests):
                    o.done.set()
                    self.order_waiters.discard(o)
            await asyncio.sleep(TICK)

    async def close(self) -> None:
        """Stop the poller."""
        if self.poller is not None:
            self.poller.cancel()
            await asyncio.gather(self.poller, return_exceptions=True)
