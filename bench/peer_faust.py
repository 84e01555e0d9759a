"""The benchmark's peer: stockflow's stock rules hosted as a faust-streaming application.

This is the stack a Python team would reach for first: one faust agent over the four
co-partitioned input topics, each key's whole `StockState` in a faust Table (in-memory
store, backed by its changelog topic `<group>-stock-changelog`), and a Postgres sink.
bench/run.py starts it as `python bench/peer_faust.py` with the `STOCKFLOW_*` environment
of `env_of()` and measures it by the offsets committed in Kafka by the consumer group
`STOCKFLOW_GROUP_ID`, which is the faust app id. SIGTERM or SIGINT stops the worker.

Per batch (`stream.take_events(BATCH, within=WITHIN)`, one agent, concurrency 1):
1. parse each message at the edge; rejections are counted and skipped (no DLQ);
2. apply the rules in consume order, each key starting from its Table value;
3. upsert the changed keys' `stock` rows and insert the ledger rows in one Postgres
   transaction (executemany);
4. store each changed key's state in the Table (one changelog message per key);
5. send the outputs, the same messages stockflow emits, with faust's producer.
faust acks the batch's events afterwards and commits offsets every 0.5 s. Not
exactly-once: after a crash, events since the last commit are applied again.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from datetime import UTC, datetime

import faust
import psycopg

from stockflow.adapters.kafka import admin, require_copartitioned
from stockflow.adapters.settings import Settings
from stockflow.contract.emit import Message, output_message
from stockflow.contract.events import parse
from stockflow.contract.topics import Topics
from stockflow.domain.effects import Decision, LedgerEntry, Outcome
from stockflow.domain.inputs import Event
from stockflow.domain.rules import apply
from stockflow.domain.state import StockState, new_state

log = logging.getLogger("peer_faust")

BATCH, WITHIN = 1000, 0.05  # events per take, seconds to wait for a fuller batch

UPSERT = (
    "INSERT INTO {schema}.stock (key, sku, warehouse, on_hand, reserved, in_transit, damaged,"
    " version, reorder_point, safety_stock, severity)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET"
    " on_hand = EXCLUDED.on_hand, reserved = EXCLUDED.reserved,"
    " in_transit = EXCLUDED.in_transit, damaged = EXCLUDED.damaged,"
    " version = EXCLUDED.version, reorder_point = EXCLUDED.reorder_point,"
    " safety_stock = EXCLUDED.safety_stock, severity = EXCLUDED.severity, updated_at = now()")
LEDGER = (
    "INSERT INTO {schema}.ledger (key, version, event_id, event_type, reference, note,"
    " on_hand_before, on_hand_after, reserved_before, reserved_after, in_transit_before,"
    " in_transit_after, damaged_before, damaged_after, actor, event_time)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT DO NOTHING")  # a replay after a crash re-inserts the same (key, version)


def merged(state: StockState, decision: Decision) -> StockState:
    """The key's whole state after an applied decision, merged as stockflow's
    `StateCache.record` does: the decided quantities, every line and reference the key had,
    and the ones the decision changed (plain dicts: a mappingproxy cannot be pickled)."""
    lines = dict(state.lines)
    lines.update({r.line: r for r in decision.lines})
    refs = dict(state.refs)
    refs.update(decision.refs)
    return decision.state.view(lines, refs)


def stock_row(s: StockState) -> tuple[object, ...]:
    q = s.qty
    return (s.key, s.sku, s.warehouse, q.on_hand, q.reserved, q.in_transit, q.damaged,
            s.version, s.reorder_point, s.safety_stock, s.severity.value)


def ledger_row(key: str, e: LedgerEntry) -> tuple[object, ...]:
    b, a = e.before, e.after
    return (key, e.version, e.event_id, e.event_type, e.reference, e.note, b.on_hand,
            a.on_hand, b.reserved, a.reserved, b.in_transit, a.in_transit, b.damaged,
            a.damaged, e.actor, e.time)


def build(s: Settings, datadir: str) -> faust.App:
    """The faust app: its source topic, the `stock` Table and the batching agent."""
    topics = Topics(s.topic_prefix)
    partitions = require_copartitioned(admin(s), topics.inputs)
    app = faust.App(
        s.group_id, broker=[f"kafka://{h}" for h in s.kafka_bootstrap.split(",")],
        store="memory://", topic_partitions=partitions, broker_commit_interval=0.5,
        consumer_auto_offset_reset="earliest", web_enabled=False, autodiscover=False,
        # Members started together join a generation apart (the first sees the join at its
        # next heartbeat, every 3 s). Messages fetched before such a rebalance were seen to
        # be dropped, their partitions never committing again (cf. faust-streaming #596):
        # streams start only once an assignment has held for 4 s.
        stream_recovery_delay=4.0, datadir=datadir)
    source = app.topic(*topics.inputs, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")
    sinks = {name: app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                             value_serializer="raw") for name in topics.all}
    # Inside `take_events` there is no current event to take a changelog partition from
    # (faust-streaming issue #497), so the partitioner places each key: raw key bytes hash
    # (murmur2, as stockflow's producer) to the partition the key's inputs are on. A Table
    # takes its serializers from key_type/value_type (json unless bytes or a faust model),
    # so keys and values are bytes and the state is pickled here.
    table = app.Table("stock", key_type=bytes, value_type=bytes, partitions=partitions,
                      use_partitioner=True)
    policy, limits = s.policy(), s.limits()
    kinds = {name: topics.kind(name) for name in topics.inputs}
    upsert, ledger = UPSERT.format(schema=s.database_schema), LEDGER.format(
        schema=s.database_schema)

    @app.agent(source, concurrency=1)
    async def process(stream: faust.StreamT[bytes]) -> None:
        rejected = 0
        conn = await psycopg.AsyncConnection.connect(s.dsn())
        try:
            # take_events (whole events) is in faust-streaming but not in its StreamT stubs
            async for batch in stream.take_events(  # type: ignore[attr-defined]
                    BATCH, within=WITHIN):
                now = datetime.now(UTC).isoformat()
                states: dict[str, StockState] = {}
                rows: list[tuple[object, ...]] = []
                out: list[Message] = []
                for ev in batch:
                    msg = ev.message
                    got = parse(kinds[msg.topic], msg.key, msg.value, limits)
                    if not isinstance(got, Event):
                        rejected += 1
                        continue
                    key = got.key
                    state = states.get(key)
                    if state is None:
                        held = table.get(key.encode())
                        state = (new_state(got.sku, got.warehouse, policy) if held is None
                                 else pickle.loads(held))  # noqa: S301 - our own changelog
                    decision = apply(state, got, policy)
                    if decision.outcome is Outcome.REJECTED:
                        rejected += 1
                    if decision.outcome is not Outcome.APPLIED or decision.ledger is None:
                        continue  # a no-op changes nothing; a rejection is only counted
                    states[key] = merged(state, decision)
                    rows.append(ledger_row(key, decision.ledger))
                    out.extend(output_message(topics, got.id, o, now) for o in decision.outputs)
                if states:
                    async with conn.transaction(), conn.cursor() as cur:
                        await cur.executemany(upsert, [stock_row(v) for v in states.values()])
                        await cur.executemany(ledger, rows)
                for key, value in states.items():
                    table[key.encode()] = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
                for m in out:
                    await sinks[m.topic].send(key=m.key, value=m.value,
                                              headers=list(m.headers) or None)
        finally:
            log.info("peer stopping: %d input(s) rejected", rejected)
            await conn.close()

    return app


def main() -> None:
    level = os.environ.get("STOCKFLOW_LOG_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory(prefix="peer-faust-") as datadir:  # faust makes one
        worker = faust.Worker(build(Settings(), datadir), loglevel=level, quiet=True)
        # At WARNING and above the worker draws a terminal spinner per log record and sets
        # the root logger to DEBUG for it: every debug call of aiokafka then builds a record.
        worker.spinner = None
        # faust warns "producer buffer full" whenever a batch sets more than 100 Table keys
        # (its changelog buffer's fixed bound) and waits for it to drain: flow control,
        # not a fault, and it would fill the benchmark's terminal.
        logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)
        worker.execute_from_commandline()


if __name__ == "__main__":
    main()
