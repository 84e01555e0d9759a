"""The relay's intake loop with a scripted consumer: a batch's offsets are committed only
after its events are queued, and a refused commit costs nothing but a re-read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from aiokafka.errors import CommitFailedError
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from stockflow.adapters.db import webhooks as store
from stockflow.adapters.health import Health
from stockflow.adapters.relay_consumer import client_options
from stockflow.adapters.relay_metrics import RelayMetrics
from stockflow.adapters.secrets import SecretBox
from stockflow.adapters.settings import Settings
from stockflow.engine.dispatch import Directory
from stockflow.engine.relay import BATCH, Intake

TP = TopicPartition("out", 0)


@dataclass
class Record:
    offset: int
    value: bytes
    topic: str = "out"
    partition: int = 0


def output(n: int) -> bytes:
    return json.dumps({"id": f"e{n}", "type": "stock.changed", "subject": "SKU-1@WH-1",
                       "time": "2026-12-03T10:00:00+00:00", "data": {}}).encode()


@dataclass
class Consumer:
    """Hands out the scripted batches, then stops the loop; refuses the commits asked."""
    batches: list[dict[TopicPartition, list[Record]]]
    stop: asyncio.Event
    said: list[tuple[str, Any]]
    refuse: set[int] = field(default_factory=set)  # commit numbers (from 0) to refuse
    commits: int = 0

    def subscribe(self, topics: list[str], listener: Any) -> None:
        assert isinstance(listener, Intake)  # it is told of each assignment
        self.said.append(("subscribe", topics))

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition,
                                                                       list[Record]]:
        assert max_records == BATCH and timeout_ms > 0
        if not self.batches:
            self.stop.set()
            return {}
        return self.batches.pop(0)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        n, self.commits = self.commits, self.commits + 1
        if n in self.refuse:
            raise CommitFailedError("rebalanced")
        self.said.append(("commit", offsets))


@dataclass
class Db:
    said: list[tuple[str, Any]]

    async def call(self, fn: Callable[..., int]) -> int:
        events = fn.keywords["events"]  # type: ignore[attr-defined]
        self.said.append(("queue", [e.event_id for e in events]))
        return len(events)

    async def close(self) -> None:
        self.said.append(("close", None))


class Dispatcher:
    def poke(self) -> None:
        pass


def directory() -> Directory:
    """One enabled endpoint that wants everything."""
    box = SecretBox(b"k" * 32)
    known = Directory(box)
    known.refresh([store.Endpoint(
        id="ep", url="https://example.com/", description="", event_patterns=("*",),
        key_patterns=("*",), state="enabled", disabled_reason=None, failing_since=None,
        created_at=datetime(2000, 1, 1, tzinfo=UTC), secret=box.seal("whsec_x", b"ep"),
        previous_secret=None, previous_until=None)], datetime.now(UTC))
    return known


def run(batches: list[dict[TopicPartition, list[Record]]],
        refuse: frozenset[int] = frozenset()) -> list[tuple[str, Any]]:
    said: list[tuple[str, Any]] = []

    async def main() -> None:
        stop = asyncio.Event()
        intake = Intake(Consumer(batches, stop, said, set(refuse)), ["out"],
                        db=cast(Any, Db(said)), directory=directory(),
                        dispatcher=cast(Any, Dispatcher()),
                        metrics=RelayMetrics(CollectorRegistry()), health=Health())
        await intake.run(stop)

    asyncio.run(main())
    return said


def test_a_batch_is_committed_after_it_is_queued_and_only_then_is_the_next_read() -> None:
    said = run([{TP: [Record(0, output(0)), Record(2, output(2))]},
                {TP: [Record(3, output(3))]}])
    assert said == [("subscribe", ["out"]),
                    ("queue", ["e0", "e2"]), ("commit", {TP: 3}),
                    ("queue", ["e3"]), ("commit", {TP: 4}),
                    ("close", None)]


def test_a_refused_commit_is_not_fatal_and_an_unreadable_record_is_still_passed() -> None:
    said = run([{TP: [Record(0, output(0))]},
                {TP: [Record(1, b"not an output event"), Record(2, output(2))]}],
               refuse=frozenset({0}))
    assert said == [("subscribe", ["out"]),
                    ("queue", ["e0"]),  # its commit refused: the next owner reads it again
                    ("queue", ["e2"]), ("commit", {TP: 3}),
                    ("close", None)]


def test_the_relay_consumer_takes_the_security_settings() -> None:
    settings = Settings(kafka_bootstrap="a:9092,b:9092", kafka_security_protocol="sasl_plaintext",
                        kafka_sasl_mechanism="scram-sha-512", kafka_sasl_username="relay",
                        kafka_sasl_password=SecretStr("pw"))
    options = client_options(settings)
    assert options["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_PLAINTEXT",
                                                                         "SCRAM-SHA-512")
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("relay", "pw")
    assert "ssl_context" not in options
