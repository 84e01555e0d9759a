"""Whole orders through the real engine in one process: the host, the stock decider and
the order coordinator's decider, their writer and recovery, on Postgres (`PgBatchStore`),
with Kafka in memory (`tests.fake_kafka`) so that a member can die at any step — a
consume, a rebalance callback, a read of positions or of the outbox, before or after a
commit, between two deliveries of a flush, before or after the outbox is marked — and
the next member takes over from what Postgres holds.

Random stock over 2-6 warehouses, random orders of 1-5 lines arriving in waves while the
two members take turns for random numbers of steps, confirms, cancels and stock counts
among them, and deaths at random steps of either member. Once everything has settled:
every order's statuses follow the contract's lifecycle, a rejected or cancelled order
holds nothing, an allocated one exactly its quantities, the units reserved over all keys
are the live parts (no leak, no double hold), and a status emitted twice is the same
(`checks.assert_orders_hold`); the stock tables add up too.

`STOCKFLOW_ENGINE_EXAMPLES` sets how many worlds are tried (the suite runs 15; 300 passed)."""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate, count
from typing import Any

import psycopg
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stockflow.adapters.db import store as db
from stockflow.adapters.db import warehouses as warehouses_db
from stockflow.adapters.db.batches import Offsets, OutboxRow, PgBatchStore, Rows
from stockflow.adapters.db.migrate import migrate
from stockflow.adapters.health import Health
from stockflow.adapters.kafka import DeliveryFailures
from stockflow.adapters.observer import NullObserver
from stockflow.adapters.publisher import prepare
from stockflow.contract.emit import Message
from stockflow.contract.events import envelope
from stockflow.contract.topics import COORDINATOR_INPUTS, INPUTS, TP, TopicKind, Topics
from stockflow.devtools.localenv import LocalServices
from stockflow.domain.allocation import STRATEGIES
from stockflow.domain.inputs import Limits
from stockflow.domain.state import Policy, Remediation
from stockflow.domain.warehouses import Location, Warehouse
from stockflow.engine.checkpoint import Checkpoint
from stockflow.engine.coordinator import CoordinatorDecider
from stockflow.engine.host import Host
from stockflow.engine.ports import Decider
from stockflow.engine.stock import StockDecider
from stockflow.engine.writer import Writer
from tests.fake_kafka import Broker, Crash, FakeConsumer, FakeProducer, Life, Record
from tests.integration.checks import assert_orders_hold
from tests.order_kit import pins, registries

EXAMPLES = int(os.environ.get("STOCKFLOW_ENGINE_EXAMPLES", "15"))
SKUS = ("A", "B")
TOPICS = Topics("t.")
LIMITS = Limits()
PROCESSOR, COORDINATOR = "processor", "coordinator"
_IDLE_STEPS = 5  # steps in a row without a message consumed end a member's turn


class DyingStore:
    """`PgBatchStore` where every call is a step the member may die at (a commit both
    before and after Postgres took it); dying closes its connections, which rolls back
    whatever transaction was open, as a killed process's would be."""

    def __init__(self, inner: PgBatchStore, life: Life) -> None:
        self.inner, self.life = inner, life

    @property
    def reads(self) -> db.Conn:
        return self.inner.reads

    def positions(self, partitions: list[TP]) -> dict[TP, int]:
        self.life.tick("read positions")
        return self.inner.positions(partitions)

    def pending_outbox(self, partitions: list[int]) -> list[tuple[int, bytes]]:
        self.life.tick("read the outbox")
        return self.inner.pending_outbox(partitions)

    def commit(self, rows: Rows, *, outbox: list[OutboxRow], offsets: Offsets,
               delete_outbox: list[int]) -> list[int]:
        self.life.tick("before a commit")
        ids = self.inner.commit(rows, outbox=outbox, offsets=offsets,
                                delete_outbox=delete_outbox)
        self.life.tick("after a commit")
        return ids

    def delete_outbox(self, ids: list[int]) -> None:
        self.life.tick("before marking emitted")
        self.inner.delete_outbox(ids)
        self.life.tick("after marking emitted")

    def backlog(self) -> tuple[int, float]:
        self.life.check()
        return self.inner.backlog()

    def rollback(self) -> None:
        self.inner.rollback()

    def reconnect(self) -> None:
        self.inner.reconnect()

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class World:
    """Postgres schema `schema`, the in-memory broker, and the stock rules' remediation."""

    dsn: str
    schema: str
    broker: Broker
    remediation: Remediation
    clock: list[int] = field(default_factory=lambda: [0])
    deaths: list[str] = field(default_factory=list)

    def decider(self, role: str) -> Decider:
        if role == PROCESSOR:
            return StockDecider(topics=TOPICS, limits=LIMITS, cache_entries=10_000,
                                policy=Policy(oversell_remediation=self.remediation))
        return CoordinatorDecider(topics=TOPICS, limits=LIMITS, ttl=Policy().reservation_ttl,
                                  cache_entries=10_000)

    def run(self, role: str, steps: int, *, batch_max: int,
            crashes: frozenset[int] = frozenset()) -> bool:
        """A member of `role` for `steps` steps of its loop, or until it has had nothing
        to do for a few, or until it dies (True)."""
        life = Life(self.clock, crashes)

        def connect(autocommit: bool) -> db.Conn:
            return db.connect(self.dsn, self.schema, autocommit=autocommit)

        store = DyingStore(PgBatchStore(connect, role), life)
        producer = FakeProducer(self.broker, life)
        checkpoint = Checkpoint(store=store, producer=producer,  # type: ignore[arg-type]
                                failures=DeliveryFailures(), flush_timeout=1.0)
        observer = NullObserver()
        host = Host(consumer=FakeConsumer(self.broker, life),  # type: ignore[arg-type]
                    producer=producer, store=store,  # type: ignore[arg-type]
                    decider=self.decider(role), writer=Writer(checkpoint, observer),
                    group=role, observer=observer, health=Health(), batch_max=batch_max,
                    idle_wait=0.001, sweep_interval=0.05, give_up=30)
        stop = threading.Event()
        taken, idle, seen = 0, 0, -1

        def progress(processed: int) -> None:
            nonlocal taken, idle, seen
            taken += 1
            idle, seen = (idle + 1 if processed == seen else 0), processed
            if taken >= steps or idle >= _IDLE_STEPS:
                stop.set()

        try:
            host.run(stop, progress)
        except Crash:
            self.deaths.append(f"a {role} died {life.where}")
            return True
        finally:
            host.close()
        return False

    def settled(self) -> bool:
        """Both groups are at the end of their inputs with nothing left in their outboxes."""
        ends = {tp: len(log) for tp, log in self.broker.logs.items()}
        with self.db() as conn:
            done = {(str(t), int(str(p))): int(str(n)) for t, p, n in conn.execute(
                "SELECT topic, partition, next_offset FROM consumer_offsets")}
            outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()
        inputs = {TOPICS.name(k) for k in (*INPUTS, *COORDINATOR_INPUTS)}
        return outbox == (0,) and all(done.get(tp, 0) == n for tp, n in ends.items()
                                      if tp[0] in inputs and n)

    @contextmanager
    def db(self) -> Iterator[db.Conn]:
        with db.connect(self.dsn, self.schema, autocommit=True) as conn:
            yield conn

    def publish(self, *docs: dict[str, Any]) -> None:
        for doc in docs:
            msg: Message = prepare(doc, TOPICS, LIMITS)
            assert msg.value is not None
            self.broker.append(msg.topic, Record(msg.key, msg.value, None))


# --- random worlds ---------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    warehouses: tuple[Warehouse, ...]
    stock: dict[tuple[str, str], int]
    waves: list[list[dict[str, Any]]]  # envelopes published together
    turns: list[tuple[str, int, int]]  # (role, steps, batch_max) after each wave
    crashes: frozenset[int]  # steps (counted over both roles) at which a member dies
    remediation: Remediation


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    warehouses = draw(registries())
    stock = {(sku, w.code): draw(st.integers(0, 6)) for sku in SKUS for w in warehouses}
    pinned = pins(warehouses)
    events: list[dict[str, Any]] = []
    for o in range(draw(st.integers(1, 6))):
        order_id = f"O{o}"
        lines = [{"line_id": f"L{i}", "sku": draw(st.sampled_from(SKUS)),
                  "quantity": draw(st.integers(1, 3)), "warehouse": draw(pinned)}
                 for i in range(draw(st.integers(1, 5)))]
        data: dict[str, Any] = {"order_id": order_id, "lines": lines,
                                "strategy": draw(st.sampled_from(STRATEGIES))}
        if data["strategy"] == "nearest" or draw(st.booleans()):
            data["ship_to"] = {"lat": draw(st.integers(-3, 3)), "lon": draw(st.integers(-3, 3))}
        events.append(envelope("order.requested", data, id_=f"req-{order_id}"))
        then = draw(st.sampled_from(["", "", "confirm", "cancel"]))
        if then:
            events.append(envelope(f"order.{then}-requested", {"order_id": order_id},
                                   id_=f"{then}-{order_id}"))
    for c in range(draw(st.integers(0, 3))):  # a count that may take stock from under them
        sku, where = draw(st.sampled_from(SKUS)), draw(st.sampled_from(warehouses)).code
        events.insert(draw(st.integers(0, len(events))), envelope(
            "stock.counted", {"sku": sku, "warehouse": where, "count_id": f"C{c}",
                              "on_hand": draw(st.integers(0, 3))}, id_=f"count-{c}"))
    cuts = sorted(draw(st.lists(st.integers(0, len(events)), max_size=4)))
    waves = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    turn = st.tuples(st.sampled_from([PROCESSOR, COORDINATOR]), st.integers(1, 25),
                     st.integers(1, 6))
    turns = [draw(turn) for _ in waves]
    # deaths a few steps apart, so that most come while there is work in hand
    crashes = frozenset(accumulate(draw(st.lists(st.integers(1, 40), max_size=8))))
    return Plan(warehouses, stock, waves, turns, crashes,
                draw(st.sampled_from(list(Remediation))))


def _receipts(plan: Plan) -> list[dict[str, Any]]:
    return [envelope("receipt.received", {"receipt_id": f"R-{sku}-{w}", "sku": sku,
                                          "warehouse": w, "quantity": units},
                     id_=f"receipt-{sku}-{w}")
            for (sku, w), units in plan.stock.items() if units]


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plans())
def test_orders_hold_through_deaths_at_random_steps(services: LocalServices, plan: Plan) -> None:
    for where in _holds(services, plan):
        event(where)


def test_orders_hold_through_a_death_at_each_step_in_turn(services: LocalServices) -> None:
    """One small world played again and again, its members dying once at step 1, then at
    step 2, ... until a play needs no more steps than the death is due at."""
    warehouses = (Warehouse("N", "N", 1, True, Location(0.0, 0.0)),
                  Warehouse("S", "S", 2, True, Location(-2.0, 0.0)))
    orders = [
        envelope("order.requested", {"order_id": "O1", "strategy": "priority", "lines": [
            {"line_id": "L1", "sku": "A", "quantity": 3}, {"line_id": "L2", "sku": "B",
                                                           "quantity": 1}]}, id_="req-O1"),
        envelope("order.requested", {"order_id": "O2", "strategy": "nearest",
                                     "ship_to": {"lat": -2, "lon": 0}, "lines": [
            {"line_id": "L1", "sku": "A", "quantity": 2}]}, id_="req-O2"),
        envelope("order.confirm-requested", {"order_id": "O1"}, id_="confirm-O1"),
        envelope("order.cancel-requested", {"order_id": "O2"}, id_="cancel-O2"),
    ]
    stock = {("A", "N"): 2, ("A", "S"): 2, ("B", "N"): 1}
    turns = [(COORDINATOR, 8, 2)]  # all at once: fewer steps, every kind of them still
    places: set[str] = set()
    for step in count(1):
        plan = Plan(warehouses, stock, [orders], turns,
                    frozenset({step}), Remediation.NONE)
        died = _holds(services, plan)
        if not died:
            break
        places.update(re.sub(r"\d+", "n", where) for where in died)
    print(f"\n{step - 1} plays, a death in each: {sorted(places)}")
    kinds = {f"a {who} died {what}" for who in (PROCESSOR, COORDINATOR) for what in (
        "consumer on_assign", "consumed n", "read positions", "read the outbox",
        "before a commit", "after a commit", "before marking emitted", "after marking emitted")}
    assert kinds <= places, kinds - places


def _holds(services: LocalServices, plan: Plan) -> list[str]:
    """Play `plan` in a fresh schema and check what it left; where members died."""
    world = World(services.database_url, f"e{uuid.uuid4().hex[:10]}", Broker(2),
                  plan.remediation)
    migrate(world.dsn, world.schema)
    try:
        _play(world, plan)
        with world.db() as conn:
            assert_orders_hold(conn, ((r.key, r.value, None) for r in world.broker.records(
                TOPICS.name(TopicKind.ORDER_STATUS))))
            _stock_adds_up(conn)
        return world.deaths
    finally:
        with psycopg.connect(world.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {world.schema} CASCADE")


def _play(world: World, plan: Plan) -> None:
    with world.db() as conn:
        for w in plan.warehouses:
            warehouses_db.add(conn, w, actor="test")
    world.publish(*_receipts(plan))
    for wave, (role, steps, batch_max) in zip(plan.waves, plan.turns, strict=True):
        world.publish(*wave)
        world.run(role, steps, batch_max=batch_max, crashes=plan.crashes)
        other = COORDINATOR if role == PROCESSOR else PROCESSOR
        world.run(other, steps, batch_max=batch_max, crashes=plan.crashes)
    for _ in range(200):  # then turns of 30 steps until both have nothing left to do
        if world.settled():
            return
        for role in (PROCESSOR, COORDINATOR):
            world.run(role, 30, batch_max=50, crashes=plan.crashes)
    raise AssertionError("the orders did not settle")


def _stock_adds_up(conn: db.Conn) -> None:
    """Each key's on hand is its ledger's sum, its reserved its active reservations'."""
    assert conn.execute(
        "SELECT s.key FROM stock s LEFT JOIN (SELECT key, sum(on_hand_delta) AS d"
        " FROM ledger GROUP BY key) l USING (key) WHERE s.on_hand <> coalesce(l.d, 0)"
    ).fetchall() == []
    assert conn.execute(
        "SELECT s.key FROM stock s LEFT JOIN (SELECT key, sum(remaining) AS r"
        " FROM reservations WHERE status IN ('pending', 'confirmed') GROUP BY key) r"
        " USING (key) WHERE s.reserved <> coalesce(r.r, 0)").fetchall() == []
