"""The API's transactional publishers: every write request's events go to Kafka in one
transaction, validated first exactly as the processor will parse them; a CSV import's rows
go in one transaction of their own."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any, NamedTuple

from confluent_kafka import KafkaException
from fastapi import HTTPException

from stockflow import StockflowError
from stockflow.adapters.broker_watch import BrokerWatch
from stockflow.adapters.publisher import Publisher, PublishError
from stockflow.adapters.settings import Settings
from stockflow.entrypoints.app import database
from stockflow.usecases.importer import Plan, publish

__all__ = ["ImportSender", "Sender"]

log = logging.getLogger("stockflow.api")


class _Job(NamedTuple):
    docs: list[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]


class Sender:
    """The API's transactional publisher, with group commit: the requests that arrive while
    one Kafka transaction commits go out together in the next. Each request's events are in
    one transaction, so a request is still all or none; a transaction that fails fails
    every request in it (503: a retry with the same Idempotency-Key is safe). One at a time,
    a transaction per request capped writes at ~30/s (the commit's round trips; measured).
    """

    def __init__(self, settings: Settings, watch: BrokerWatch | None = None) -> None:
        self.publisher = Publisher(settings, source="stockflow-api", watch=watch)
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.worker = threading.Thread(target=self._work, name="api-sender", daemon=True)
        self.worker.start()

    async def send(self, docs: list[dict[str, Any]]) -> None:
        """Validate the events as the processor would and publish them in a transaction;
        422 for an invalid one (nothing of the request is published), 503 when Kafka did
        not take them."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self.jobs.put(_Job(docs, loop, done))
        try:
            await done
        except PublishError as exc:
            if exc.reason is None:
                raise HTTPException(503, f"Kafka did not take the events: {exc}") from None
            raise HTTPException(422, f"{exc} (nothing was published)") from None
        except KafkaException as exc:
            raise HTTPException(503, f"Kafka did not take the events: {exc}") from None

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
    do not wait behind it), one import at a time."""

    def __init__(self, settings: Settings, watch: BrokerWatch | None = None) -> None:
        self.settings = settings
        self.publisher = Publisher(settings, source="stockflow-import", watch=watch)
        self.lock = asyncio.Lock()

    async def send(self, found: Plan) -> None:
        """Record the import and publish its rows; 422 if its id named another file, 503
        when Kafka did not take them."""
        async with self.lock:
            try:
                await asyncio.to_thread(self._send, found)
            except (PublishError, KafkaException) as exc:
                raise HTTPException(503, f"Kafka did not take the rows: {exc}; nothing was "
                                         "published (retry with the same Idempotency-Key)"
                                    ) from None
            except StockflowError as exc:
                raise HTTPException(422, str(exc)) from None

    def _send(self, found: Plan) -> None:
        with database(self.settings) as conn:
            publish(conn, self.publisher, found)

    def close(self) -> None:
        self.publisher.close()
