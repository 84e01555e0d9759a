"""Delivery workers of the webhook relay: lease due deliveries from the Postgres queue, send
each signed through the SSRF guard, and write back what became of it.

1. Every tick, each enabled endpoint gets as many leases as it has free slots (at most
   `per_endpoint` attempts in flight per endpoint, `total` in all), so a slow or dead
   receiver holds only its own slots and never delays the others.
2. Each attempt resolves the endpoint's URL once, checks every address, connects to the
   checked one, signs the stored body (Standard Webhooks) and posts it, following no
   redirect.
3. Outcomes are written in one transaction per tick: delivered, pending with the next
   attempt's time (the retry policy), or exhausted; 410 Gone, or failing without a success
   for the policy's period, disables the endpoint. A lease that runs out (the relay died
   mid-attempt) makes the delivery due again: at least once, same `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stockflow.adapters import ssrf, webhook_http
from stockflow.adapters.db import webhooks as store
from stockflow.adapters.db.store import Conn
from stockflow.adapters.secrets import SecretBox
from stockflow.contract import webhooks as wire
from stockflow.domain.webhooks import Answer, RetryPolicy, Verdict, verdict

__all__ = ["Directory", "Dispatcher"]

log = logging.getLogger("stockflow.engine.dispatch")


@dataclass(frozen=True)
class _Known:
    endpoint: store.Endpoint
    secrets: tuple[str, ...]  # opened; the current one first


class Directory:
    """The endpoints as last read from Postgres, with their secrets opened for signing."""

    def __init__(self, box: SecretBox) -> None:
        self.box = box
        self.known: dict[str, _Known] = {}
        self.loaded = asyncio.Event()

    def refresh(self, rows: list[store.Endpoint], now: datetime) -> None:
        known = {}
        for ep in rows:
            aad = ep.id.encode()
            secrets = [self.box.open(ep.secret, aad)]
            if ep.previous_secret is not None and ep.previous_until and ep.previous_until > now:
                secrets.append(self.box.open(ep.previous_secret, aad))
            known[ep.id] = _Known(ep, tuple(secrets))
        self.known = known
        self.loaded.set()

    def endpoints(self) -> list[store.Endpoint]:
        return [k.endpoint for k in self.known.values()]


class Dispatcher:
    """Runs the delivery loop until stopped; see the module's steps."""

    def __init__(self, *, connect: Callable[[], Conn], directory: Directory,
                 policy: RetryPolicy, guard: ssrf.Policy, timeout: float, per_endpoint: int,
                 total: int, refresh_every: float = 2.0, tick: float = 0.05) -> None:
        self.connect, self.directory, self.policy, self.guard = connect, directory, policy, guard
        self.timeout, self.per_endpoint, self.total = timeout, per_endpoint, total
        self.refresh_every, self.tick = refresh_every, tick
        self.lease = timedelta(seconds=timeout + 30)
        self.in_flight: Counter[str] = Counter()
        self.done: list[store.Outcome] = []
        self.rand = random.Random()  # noqa: S311 - spreads retries, guards nothing

    async def run(self, stop: asyncio.Event) -> None:
        conn = await asyncio.to_thread(self.connect)
        tasks: set[asyncio.Task[None]] = set()
        refreshed = 0.0
        async with webhook_http.session() as http:
            try:
                while not stop.is_set():
                    if time.monotonic() - refreshed > self.refresh_every:
                        rows = await asyncio.to_thread(store.endpoints, conn)
                        self.directory.refresh(rows, datetime.now(UTC))
                        refreshed = time.monotonic()
                    done, self.done = self.done, []
                    claimed = await asyncio.to_thread(_settle_and_claim, conn, done,
                                                      self._free(), self.lease)
                    for c in claimed:
                        self.in_flight[c.endpoint_id] += 1
                        task = asyncio.create_task(self._attempt(http, c))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    if not claimed:
                        await _sleep_or_stop(stop, self.tick)
            finally:
                if tasks:
                    await asyncio.wait(tasks, timeout=self.timeout + 1)
                await asyncio.to_thread(_settle_and_claim, conn, self.done, {}, self.lease)
                await asyncio.to_thread(conn.close)

    def _free(self) -> dict[str, int]:
        left = self.total - sum(self.in_flight.values())
        free: dict[str, int] = {}
        for ep in self.directory.endpoints():
            n = min(self.per_endpoint - self.in_flight[ep.id], left)
            if ep.state == "enabled" and n > 0:
                free[ep.id] = n
                left -= n
        return free

    async def _attempt(self, http: webhook_http.Session, c: store.Claimed) -> None:
        try:
            answer = await self._send(http, c)
        except Exception as exc:  # noqa: BLE001 - whatever happened, the attempt failed
            log.warning("webhook attempt failed unexpectedly: %s", type(exc).__name__)
            answer = Answer(None, error=f"internal: {type(exc).__name__}")
        finally:
            self.in_flight[c.endpoint_id] -= 1
        self.done.append(self._outcome(c, answer, datetime.now(UTC)))

    async def _send(self, http: webhook_http.Session, c: store.Claimed) -> Answer:
        known = self.directory.known.get(c.endpoint_id)
        if known is None:
            return Answer(None, error="endpoint unknown")
        try:
            target = await ssrf.resolve(known.endpoint.url, self.guard)
        except ssrf.UrlRefused as exc:
            return Answer(None, error=f"refused: {exc.reason}")
        headers = wire.headers(known.secrets, c.event_id, int(time.time()), c.body)
        got = await webhook_http.post(http, target, c.body, headers, self.timeout)
        return Answer(got.status, retry_after=got.retry_after, error=got.error)

    def _outcome(self, c: store.Claimed, answer: Answer, now: datetime) -> store.Outcome:
        made = c.attempts + 1
        v = verdict(answer)
        if v is Verdict.DELIVERED:
            return store.Outcome(c.endpoint_id, c.event_id, "delivered", None, answer.status,
                                 None, now, ok=True)
        wait = self.policy.next_wait(made, answer, self.rand.random())
        status = "exhausted" if wait is None else "pending"
        next_at = None if wait is None else now + timedelta(seconds=wait)
        disable = None
        if v is Verdict.GONE:
            disable = "the endpoint answered 410 Gone"
        else:
            known = self.directory.known.get(c.endpoint_id)
            since = known.endpoint.failing_since if known else None
            if self.policy.should_disable(since, now):
                disable = f"failing without a success since {since:%Y-%m-%d %H:%M} UTC"
        return store.Outcome(c.endpoint_id, c.event_id, status, next_at, answer.status,
                             answer.error, now, ok=False, disable=disable)


def _settle_and_claim(conn: Conn, outcomes: list[store.Outcome], free: dict[str, int],
                      lease: timedelta) -> list[store.Claimed]:
    with conn.transaction():
        store.record(conn, outcomes)
        return store.claim(conn, free, lease)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
