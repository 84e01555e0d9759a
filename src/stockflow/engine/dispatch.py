"""Delivery workers of the webhook relay: lease due deliveries from the Postgres queue, send
each signed through the SSRF guard, and write back what became of it.

1. Whenever an attempt ends, the intake queued something, or a tick passed, each enabled
   endpoint gets as many leases as it has free slots (at most `per_endpoint` attempts in
   flight per endpoint, `total` in all), so a slow or dead receiver holds only its own
   slots and never delays the others.
2. Each attempt resolves the endpoint's URL once, checks every address, connects to the
   checked one, signs the stored body (Standard Webhooks) and posts it, following no
   redirect.
3. Outcomes are written in the same transaction as the next leases: delivered, pending with the next
   attempt's time (the retry policy), or exhausted; 410 Gone, or failing without a success
   for the policy's period, disables the endpoint. A lease that runs out (the relay died
   mid-attempt) makes the delivery due again: at least once, same `webhook-id`.
4. A Postgres outage is waited out (`DbLink`); outcomes not yet written are kept and
   written once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from stockflow.adapters import ssrf, webhook_http
from stockflow.adapters.db import webhooks as store
from stockflow.adapters.db.store import Conn
from stockflow.adapters.relay_metrics import FAILURE_CAUSES, RelayMetrics
from stockflow.adapters.secrets import SecretBox
from stockflow.contract import webhooks as wire
from stockflow.domain.webhooks import Answer, RetryPolicy, Verdict, verdict
from stockflow.engine.db_link import DbLink

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
        """Take the endpoints as read, their secrets opened (a previous secret until its grace
        ends)."""
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
        """The endpoints known now."""
        return [k.endpoint for k in self.known.values()]


class Dispatcher:
    """Runs the delivery loop until stopped; see the module's steps."""

    def __init__(self, *, db: DbLink, directory: Directory, policy: RetryPolicy,
                 guard: ssrf.Policy, timeout: float, per_endpoint: int, total: int,
                 metrics: RelayMetrics, refresh_every: float = 2.0, tick: float = 0.05,
                 quiet_tick: float = 1.0) -> None:
        self.db, self.directory, self.policy, self.guard = db, directory, policy, guard
        self.metrics = metrics
        self.timeout, self.per_endpoint, self.total = timeout, per_endpoint, total
        # An empty look doubles the wait before the next, from `tick` up to `quiet_tick`:
        # a quiet relay asks Postgres once a second, not twenty times (0.029 cores idle
        # before, bench/idle.py); a poke (something queued here, a slot freed) looks at
        # once, and what falls due unpoked (a retry, a delivery another relay queued) is
        # seen within `quiet_tick`.
        self.refresh_every, self.tick, self.quiet_tick = refresh_every, tick, quiet_tick
        self.lease = timedelta(seconds=timeout + 30)
        self.in_flight: Counter[str] = Counter()
        self.done: list[store.Outcome] = []
        self.rand = random.Random()  # noqa: S311 - spreads retries, guards nothing
        self.wake = asyncio.Event()  # a slot came free or something was queued

    def poke(self) -> None:
        """Something may be due now: look without waiting for the tick."""
        self.wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim due deliveries and attempt them, within the limits, until `stop` is set."""
        tasks: set[asyncio.Task[None]] = set()
        refreshed, wait = 0.0, self.tick
        async with webhook_http.session() as http:
            try:
                while not stop.is_set():
                    self.db.health.tick()
                    if time.monotonic() - refreshed > self.refresh_every:
                        await self._refresh()
                        refreshed = time.monotonic()
                    # attempts finishing meanwhile append to self.done: keep those
                    done, free = list(self.done), self._free()
                    disabled, claimed = await self.db.call(partial(
                        _settle_and_claim, outcomes=done, free=free, lease=self.lease))
                    del self.done[:len(done)]
                    self._count_disabled(done, disabled)
                    for c in claimed:
                        self.in_flight[c.endpoint_id] += 1
                        task = asyncio.create_task(self._attempt(http, c))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    if claimed or await self._idle(stop, wait):
                        wait = self.tick
                    else:
                        wait = min(2 * wait, self.quiet_tick)
            finally:
                if tasks:
                    await asyncio.wait(tasks, timeout=self.timeout + 1)
                # a short wait at most: what is not written now is attempted again once the
                # leases run out (at least once)
                done = list(self.done)
                with contextlib.suppress(Exception):
                    await self.db.call(partial(_settle_and_claim, outcomes=done, free={},
                                               lease=self.lease), give_up=5.0)
                await self.db.close()

    def _count_disabled(self, done: list[store.Outcome], disabled: list[str]) -> None:
        gone = {o.endpoint_id for o in done if o.disable and o.answered == 410}
        for endpoint_id in disabled:
            self.metrics.disabled.labels("gone" if endpoint_id in gone else "failing").inc()

    async def _refresh(self) -> None:
        rows = await self.db.call(store.endpoints)
        self.directory.refresh(rows, datetime.now(UTC))
        states = Counter(ep.state for ep in rows)
        for state in ("enabled", "disabled"):
            self.metrics.endpoints.labels(state).set(states[state])
        depth = await self.db.call(store.queue_depth)
        self.metrics.pending.set(depth.pending)
        self.metrics.oldest.set(depth.oldest_due)
        self.metrics.held.set(depth.held)

    async def _idle(self, stop: asyncio.Event, wait: float) -> bool:
        """Until poked, stopped or `wait` seconds have passed (retries fall due with no
        poke); whether it was poked."""
        waits = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        poked = self.wake.is_set()
        self.wake.clear()
        return poked

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
        outcome = self._outcome(c, answer, datetime.now(UTC))
        self.metrics.attempts.labels(_RESULTS[outcome.status]).inc()
        if not outcome.ok:
            self.metrics.failures.labels(_cause(answer)).inc()
        self.done.append(outcome)
        self.wake.set()

    async def _send(self, http: webhook_http.Session, c: store.Claimed) -> Answer:
        known = self.directory.known.get(c.endpoint_id)
        if known is None:
            return Answer(None, error="endpoint unknown")
        try:
            target = await ssrf.resolve(known.endpoint.url, self.guard)
        except ssrf.UrlRefused as exc:
            return Answer(None, error=f"{_SSRF}: {exc.reason}")
        headers = wire.headers(known.secrets, c.event_id, int(time.time()), c.body)
        got = await webhook_http.post(http, target, c.body, headers, self.timeout)
        self.metrics.latency.observe(got.elapsed)
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


_SSRF = "refused by the SSRF guard"
_RESULTS = {"delivered": "delivered", "pending": "retrying", "exhausted": "exhausted"}


def _cause(answer: Answer) -> str:
    """The failure's `cause` label (one of FAILURE_CAUSES)."""
    if answer.status is not None:
        group = f"http_{answer.status // 100}xx"
        return group if group in FAILURE_CAUSES else "http_other"
    error = (answer.error or "").split(":", 1)[0]
    if (answer.error or "").startswith(_SSRF):
        return "ssrf"
    return error if error in FAILURE_CAUSES else "internal"


def _settle_and_claim(conn: Conn, outcomes: list[store.Outcome], free: dict[str, int],
                      lease: timedelta) -> tuple[list[str], list[store.Claimed]]:
    """Record outcomes and lease what is due, in one transaction: the endpoints it
    disabled, and the leased deliveries."""
    with conn.transaction():
        disabled = store.record(conn, outcomes)
        return disabled, store.claim(conn, free, lease)
