"""Latency at a fixed offered rate: publish -> output readable, and where the time went.

Events are offered at `rate` per second by a paced producer. `stock-changed` and
`reservations` stamp each message with the broker's clock as it is appended
(LogAppendTime), the moment it becomes readable: outputs are produced without
transactions, and a local topic has one replica. A reader assigned to their end notes
that stamp for each event's `stock.changed` and `reservation.accepted` (matched by
`data.cause.event_id`); each latency runs from the event's publish call to it. The
processes under test expose /metrics; their batch stage histograms and garbage-collector
pauses are read at the end.
"""

from __future__ import annotations

import signal
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from common import (
    committed,
    cpu_seconds,
    env_of,
    kafka_config,
    per_event,
    pg_counters,
    prepare,
    publish,
    say,
    settings_for,
    spawn,
)
from confluent_kafka import OFFSET_END, TIMESTAMP_LOG_APPEND_TIME, Consumer, TopicPartition

# re-exported by confluent_kafka.admin without __all__, so its stubs don't say they are
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from prometheus_client.parser import text_string_to_metric_families

from stockflow.adapters.kafka import admin, producer
from stockflow.adapters.settings import Settings
from stockflow.contract.topics import TopicKind, Topics
from stockflow.devtools.localenv import free_port
from stockflow.devtools.workload import Item, generate

_TICK = 0.001  # the paced producer's step, seconds
_CAUSE = b'"event_id":"'
_TYPE = b'"type":"'


@dataclass
class Latency:
    rate: int  # offered, per second
    achieved: float  # what the paced producer managed
    changed: list[float] = field(default_factory=list)  # seconds to stock.changed
    accepted: list[float] = field(default_factory=list)  # seconds to reservation.accepted
    # the same for the events offered in the first `settle` seconds after the processes
    # started (fresh processes on fresh topics: what a restart's first seconds see)
    started_changed: list[float] = field(default_factory=list)
    started_accepted: list[float] = field(default_factory=list)
    stages: dict[str, tuple[float, int]] = field(default_factory=dict)  # sum s, batches
    gc: dict[str, tuple[float, int]] = field(default_factory=dict)  # generation: sum, count
    batch_messages: tuple[float, int] = (0.0, 0)  # sum, batches
    cpu: dict[str, float] = field(default_factory=dict)  # role: CPU seconds while offered
    offered_seconds: float = 0.0
    postgres: str = ""  # what Postgres did per offered event (`common.per_event`)
    alone: dict[str, float] = field(default_factory=dict)  # `offered_alone`: role: cores


_MEASURED = (TopicKind.STOCK_CHANGED, TopicKind.RESERVATIONS)


def _stamp_on_append(s: Settings, topics: Topics) -> None:
    """The measured topics take the broker's append time as each message's timestamp."""
    entry = ConfigEntry("message.timestamp.type", "LogAppendTime",
                        incremental_operation=AlterConfigOpType.SET)
    resources = [ConfigResource(ResourceType.TOPIC, topics.name(k), incremental_configs=[entry])
                 for k in _MEASURED]
    client = admin(s)  # held until the futures resolve: a collected client cancels them
    for fut in client.incremental_alter_configs(resources).values():
        fut.result(30)


class _Reader:
    """Notes when each cause's outputs became readable (the broker's append stamp), so
    its own fetches may be lazy: a reader fetching as soon as a byte arrived (librdkafka's
    default) cost the broker about 70 and this driver 30 us per event at 5,000/s
    (measured), taken from what it measures. A byte search, no JSON parse."""

    def __init__(self, s: Settings, topics: Topics) -> None:
        self.changed: dict[str, float] = {}
        self.accepted: dict[str, float] = {}
        self.stop = threading.Event()
        self.cons = Consumer(kafka_config(**{
            "bootstrap.servers": s.kafka_bootstrap, "group.id": "bench-lat",
            "enable.auto.commit": False, "fetch.min.bytes": 1 << 20, "fetch.wait.max.ms": 100}))
        names = [topics.name(k) for k in _MEASURED]
        meta = self.cons.list_topics(timeout=10)
        self.cons.assign([TopicPartition(n, p, OFFSET_END) for n in names
                          for p in meta.topics[n].partitions])
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stop.is_set():
            for m in self.cons.consume(1000, 0.05):
                value = m.value()
                if m.error() is not None or not value:
                    continue
                kind, ms = m.timestamp()
                if kind != TIMESTAMP_LOG_APPEND_TIME:
                    raise SystemExit(f"{m.topic()} does not stamp messages on append")
                at = ms / 1000
                t = value.find(_TYPE) + len(_TYPE)
                c = value.rfind(_CAUSE) + len(_CAUSE)
                cause = value[c:value.find(b'"', c)].decode()
                if value.startswith(b"stock.changed", t):
                    self.changed.setdefault(cause, at)
                elif value.startswith(b"reservation.accepted", t):
                    self.accepted.setdefault(cause, at)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.cons.close()


def measure(cmd: list[str], base: Settings, *, label: str, rate: int, seconds: float,
            skus: int, partitions: int, members: int = 1, settle: float = 0.0,
            ready: Callable[[Settings, Topics], int] = committed) -> Latency:
    """Run `members` copies of `cmd` on fresh topics and offer `rate` events/s for
    `settle` + `seconds`, measuring the last `seconds` (the first `settle` are reported
    apart); `ready` tells how many inputs they have taken in (to wait for the setup)."""
    s = settings_for(base, label)
    topics = prepare(s, partitions)
    _stamp_on_append(s, topics)
    wl = generate(events=int(rate * (settle + seconds)), skus=skus, warehouses=3, seed=5)
    cut = int(rate * settle)  # the first measured event's place in the stream
    publish(s, topics, wl.setup)
    ports = [free_port() for _ in range(members)]
    procs = [spawn(cmd, env_of(s, STOCKFLOW_METRICS_PORT=str(port))) for port in ports]
    reader = None
    try:
        deadline = time.monotonic() + 120
        while ready(s, topics) < len(wl.setup):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"{label}: the setup events were never taken in")
            time.sleep(0.1)
        reader = _Reader(s, topics)
        time.sleep(1)  # the reader's partitions are positioned before traffic starts
        first = _offer(s, topics, wl.stream[:cut], rate)
        first.pop("", 0.0)
        measured = wl.stream[cut:]
        before, pg_before = cpu_seconds(), pg_counters(s)
        sent = _offer(s, topics, measured, rate)
        after, pg_after = cpu_seconds(), pg_counters(s)
        span = sent.pop("", 0.0)
        achieved = len(measured) / max(span, 1e-9)
        _settle(reader)
        got = Latency(rate, achieved, *_since(reader, sent), *_since(reader, first))
        got.cpu = {role: after[role] - before[role] for role in after}
        got.offered_seconds = span
        got.postgres = per_event(pg_before, pg_after, len(measured))
        _scrape(ports, got)
        return got
    finally:
        if reader is not None:
            reader.close()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)


def _since(reader: _Reader, sent: dict[str, float]) -> tuple[list[float], list[float]]:
    """Seconds from each event's publish to its stock.changed, and to its
    reservation.accepted, where there is one."""
    return ([reader.changed[i] - t for i, t in sent.items() if i in reader.changed],
            [reader.accepted[i] - t for i, t in sent.items() if i in reader.accepted])


def offered_alone(base: Settings, *, rate: int, seconds: float, skus: int,
                  partitions: int) -> dict[str, float]:
    """Cores each role uses while `rate` events/s are offered for `seconds` to topics that
    nothing consumes: the load's own cost (the order services' producer, here this
    driver, and the broker taking the events in), which no processor can lower."""
    s = settings_for(base, "offer")
    topics = prepare(s, partitions)
    wl = generate(events=int(rate * seconds), skus=skus, warehouses=3, seed=5)
    before = cpu_seconds()
    sent = _offer(s, topics, wl.stream, rate)
    after = cpu_seconds()
    span = max(sent.pop("", 0.0), 1e-9)
    return {role: (after[role] - before[role]) / span for role in after}


def _offer(s: Settings, topics: Topics, stream: list[Item], rate: int) -> dict[str, float]:
    """Publish `stream` paced at `rate`/s; returns each event id's publish time (and the
    whole span under the key "")."""
    prod = producer(s)  # an order service's producer: librdkafka's 5 ms linger
    sent: dict[str, float] = {}
    start = time.monotonic()
    i = 0
    while i < len(stream):
        # Everything due by now goes out, then one sleep of at least a tick: a sleep per
        # event (5,000 wake-ups a second) cost this driver 0.1 core (measured), taken from
        # what it measures. Each event's latency still runs from its own produce call.
        due = min(len(stream), int((time.monotonic() - start) * rate) + 1)
        for it in stream[i:due]:
            if it.id:
                sent.setdefault(it.id, time.time())
            prod.produce(topics.name(it.kind), it.value, it.key)
        prod.poll(0)
        i = due
        if i < len(stream) and (ahead := start + i / rate - time.monotonic()) > 0:
            time.sleep(max(ahead, _TICK))
    prod.flush(60)
    sent[""] = time.monotonic() - start
    return sent


def _settle(reader: _Reader, quiet: float = 3.0, limit: float = 120.0) -> None:
    """Wait until no new output has been read for `quiet` seconds."""
    last, changed_at, end = -1, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < end:
        n = len(reader.changed) + len(reader.accepted)
        if n != last:
            last, changed_at = n, time.monotonic()
        elif time.monotonic() - changed_at > quiet:
            return
        time.sleep(0.2)
    say("  outputs still arriving when the wait ended")


def _scrape(ports: list[int], into: Latency) -> None:
    """Sum the members' stage and GC histograms (a process without /metrics adds none)."""
    stages: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    gcs: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    batch = [0.0, 0]
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                suffix = sample.name.rsplit("_", 1)[-1]
                if suffix not in ("sum", "count"):
                    continue
                slot = 0 if suffix == "sum" else 1
                if family.name == "stockflow_batch_stage_seconds":
                    stages[sample.labels["stage"]][slot] += sample.value
                elif family.name == "stockflow_gc_pause_seconds":
                    gcs[sample.labels["generation"]][slot] += sample.value
                elif family.name == "stockflow_batch_messages":
                    batch[slot] += sample.value
    into.stages = {k: (v[0], int(v[1])) for k, v in stages.items()}
    into.gc = {k: (v[0], int(v[1])) for k, v in gcs.items()}
    into.batch_messages = (batch[0], int(batch[1]))
