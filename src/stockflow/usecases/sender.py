"""Transactional publishers for a server's concurrent requests (the HTTP API's): every
request's events go to Kafka in one transaction, validated first exactly as the processor
will parse them; a CSV import's rows go in one transaction of their own. Failures come out
as PublishError, KafkaException or StockflowError for the server to answer in its terms."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from confluent_kafka import KafkaException

from stockflow.adapters.broker_watch import BrokerWatch
from stockflow.adapters.db.store import Conn
from stockflow.adapters.publisher import Publisher, PublishError
from stockflow.adapters.settings import Settings
from stockflow.usecases.importer import Plan, publish

__all__ = ["ImportSender", "Sender"]

log = logging.getLogger("stockflow.api")


class _Job(NamedTuple):
    docs: list[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]


class Sender:
    """A transactional publisher with group commit: the requests that arrive while one
    Kafka transaction commits go out together in the next. Each request's events are in
    one transaction, so a request is still all or none; a transaction that fails fails
    every request in it (the API answers 503: a retry with the same Idempotency-Key is
    safe). One at a time, a transaction per request capped the API's writes at ~30/s (the
    commit's round trips; measured)."""

    def __init__(self, settings: Settings, watch: BrokerWatch | None = None) -> None:
        self.publisher = Publisher(settings, source="stockflow-api", watch=watch)
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.worker = threading.Thread(target=self._work, name="api-sender", daemon=True)
        self.worker.start()

    async def send(self, docs: list[dict[str, Any]]) -> None:
        """Validate the events as the processor would and publish them in a transaction.
        PublishError with a reason for an invalid one (nothing of the request is
        published); PublishError without one, or KafkaException, when Kafka did not take
        them."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self.jobs.put(_Job(docs, loop, done))
        await done

    def _work(self) -> None:
        try:
            self.publisher.ready_transactions()
        except KafkaException as exc:  # Kafka is down: the first request's transaction retries
            log.warning("Kafka transactions not ready yet: %s", exc)
        while (first := self.jobs.get()) is not None:
            batch, closing = [first], False
            while not closing:
                try:
                    more = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                else:
                    batch.append(more)
            self._transact(batch)
            if closing:
                return

    def _transact(self, batch: list[_Job]) -> None:
        """One transaction for every valid request of `batch`; the invalid ones fail alone."""
        messages, invalid = [], {}
        for i, job in enumerate(batch):  # validated here, off the event loop
            try:
                messages.extend([self.publisher.prepare(doc) for doc in job.docs])
            except PublishError as exc:
                invalid[i] = exc
        failed: BaseException | None = None
        if messages:
            try:
                self.publisher.transact(messages)
            except Exception as exc:  # noqa: BLE001 - handed to every request of the batch
                failed = exc
        for i, job in enumerate(batch):
            job.loop.call_soon_threadsafe(_settle, job.done, invalid.get(i, failed))

    def close(self) -> None:
        """Finish the queued jobs, then close the publisher."""
        self.jobs.put(None)
        self.worker.join()
        self.publisher.close()


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.cancelled():  # the client went away; its events may still have been published
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class ImportSender:
    """Imports' own transactional publisher (an import's transaction lasts seconds: writes
    do not wait behind it), one import at a time; `connect` opens a database connection."""

    def __init__(self, settings: Settings, connect: Callable[[], Conn],
                 watch: BrokerWatch | None = None) -> None:
        self.connect = connect
        self.publisher = Publisher(settings, source="stockflow-import", watch=watch)
        self.lock = asyncio.Lock()

    async def send(self, found: Plan) -> None:
        """Record the import and publish its rows: PublishError or KafkaException when
        Kafka did not take them, StockflowError if its id named another file."""
        async with self.lock:
            await asyncio.to_thread(self._send, found)

    def _send(self, found: Plan) -> None:
        with self.connect() as conn:
            publish(conn, self.publisher, found)

    def close(self) -> None:
        """Close the publisher, delivering what it holds."""
        self.publisher.close()
