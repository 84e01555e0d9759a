"""The order coordinator against a model of the stock processor (hypothesis): concurrent
orders over 2-6 warehouses, their events and the processor's verdicts delivered in random
order, some twice, while stock moves under them. Whatever happens, every order's statuses
follow the lifecycle, an order that ended holds nothing, an allocated one holds exactly
its quantities, and what the processor reserves is exactly the parts the coordinator
believes it holds. One order alone against known stock is rejected exactly when no
allocation exists (Gale's condition, checked by brute force over sets of lines)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.domain.allocation import STRATEGIES
from stockflow.domain.effects import Outcome, Output
from stockflow.domain.order_inputs import OrderInput
from stockflow.domain.order_state import HELD, Context, OrderState, PartStatus, Phase
from stockflow.domain.orders import decide, expiry
from stockflow.domain.remediation import REASON as REMEDIATION
from stockflow.domain.warehouses import Warehouse
from tests.factories import T0
from tests.order_kit import order_input, pins, registries, word

SKUS = ("A", "B")
Key = tuple[str, str]  # (sku, warehouse)
Verdict = tuple[str, str, str, int, str | None]  # (verdict, order_id, line_id, units, reason)
ACTIVE = ("pending", "confirmed")


# --- the stock processor, as the contract describes it ---------------------------------


@dataclass
class Line:
    status: str
    remaining: int
    seq: int
    expires_at: datetime


@dataclass
class Stock:
    on_hand: int
    lines: dict[tuple[str, str], Line] = field(default_factory=dict)

    @property
    def sellable(self) -> int:
        return self.on_hand - sum(r.remaining for r in self.lines.values()
                                  if r.status in ACTIVE)


class Processor:
    """Reservation lines per key: a placement is accepted iff sellable covers it; cancel,
    confirm and expiry as the contract says; a movement that oversells releases the newest
    pending lines (oversell remediation on). Returns the reservation events it emits."""

    def __init__(self, stock: dict[Key, int]) -> None:
        self.keys = {key: Stock(units) for key, units in stock.items()}
        self.seq = 0

    def at(self, key: Key) -> Stock:
        return self.keys.setdefault(key, Stock(0))

    def apply(self, key: Key, cmd: Output, now: datetime) -> list[Verdict]:
        s, d = self.at(key), cmd.data
        ident = (d["order_id"], d["line_id"])
        r = s.lines.get(ident)
        match cmd.type:
            case "order.placed":
                if r is not None:
                    return []
                self.seq += 1
                ok = d["quantity"] <= s.sellable
                s.lines[ident] = Line("pending" if ok else "rejected",
                                      d["quantity"] if ok else 0, self.seq,
                                      datetime.fromisoformat(d["expires_at"]))
                return [("accepted" if ok else "rejected", *ident, d["quantity"], None)]
            case "order.confirmed":
                if r is None or r.status != "pending":
                    return []
                r.status = "confirmed"
                return [("confirmed", *ident, r.remaining, None)]
            case "order.cancelled":
                if r is None:
                    s.lines[ident] = Line("released", 0, 0, now)  # a later placement: no-op
                    return []
                if r.status not in ACTIVE:
                    return []
                freed, r.status, r.remaining = r.remaining, "released", 0
                return [("released", *ident, freed, d.get("reason"))]
            case "reservation.expired":
                if r is None or r.status != "pending" or r.expires_at > now:
                    return []
                freed, r.status, r.remaining = r.remaining, "expired", 0
                return [("expired", *ident, freed, None)]
        raise AssertionError(cmd.type)

    def shock(self, key: Key, units: int) -> list[Verdict]:
        """A shipment of `units` not for any order: on_hand falls, remediation may release."""
        s = self.at(key)
        floor = min(0, s.sellable)
        s.on_hand -= units
        out: list[Verdict] = []
        for ident, r in sorted(s.lines.items(), key=lambda item: -item[1].seq):
            if s.sellable >= floor:
                break
            if r.status == "pending":
                freed, r.status, r.remaining = r.remaining, "released", 0
                out.append(("released", *ident, freed, REMEDIATION))
        return out


# --- the world: the coordinator, the processor and the queues between them ------------


@dataclass(frozen=True)
class Order:
    order_id: str
    lines: tuple[dict[str, Any], ...]
    strategy: str
    ship_to: dict[str, int] | None


class World:
    def __init__(self, warehouses: tuple[Warehouse, ...], stock: dict[Key, int]) -> None:
        self.warehouses = warehouses
        self.processor = Processor(stock)
        self.now = T0
        self.commands: dict[Key, deque[Output]] = {}  # inventory.orders, per key
        self.requests: dict[str, deque[OrderInput]] = {}  # order-requests, per order
        self.reports: dict[tuple[str, Key], deque[OrderInput]] = {}  # per order and key
        self.delivered: list[OrderInput] = []
        self.states: dict[str, OrderState] = {}
        self.statuses: dict[str, list[Output]] = {}
        self.touched: set[str] = set()  # orders a foreign cancel reached
        self.swept: set[tuple[str, datetime | str]] = set()
        self.ids = 0

    # the order service and the sweepers

    def send(self, type_: str, order_id: str, **data: Any) -> None:
        self.ids += 1
        self.requests.setdefault(order_id, deque()).append(
            order_input(type_, order_id, at=self.now, id_=f"x{self.ids}", **data))

    def request(self, order: Order) -> None:
        self.send("order.requested", order.order_id, lines=order.lines,
                  strategy=order.strategy, ship_to=order.ship_to)

    def tick(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        for order_id, state in self.states.items():
            due = expiry(state)
            if due is not None and due <= self.now and (order_id, due) not in self.swept:
                self.swept.add((order_id, due))
                self.send("order.expired", order_id)
        for order_id, state in self.states.items():  # parts the processor never judges
            for part in self.voided(state):
                if (order_id, part) not in self.swept:
                    self.swept.add((order_id, part))
                    self.send("order.expired", order_id)
        for key, s in self.processor.keys.items():
            for (order_id, line_id), r in s.lines.items():
                if r.status == "pending" and r.expires_at <= self.now:
                    self.commands.setdefault(key, deque()).append(Output(
                        "reservation.expired", f"{key[0]}@{key[1]}", line_id,
                        {"order_id": order_id, "line_id": line_id}))

    # deliveries

    def snapshot(self) -> dict[Key, int]:
        """Sellable minus the placements not yet applied: what the shell reads."""
        figures = {key: s.sellable for key, s in self.processor.keys.items()}
        for key, queue in self.commands.items():
            for cmd in queue:
                if cmd.type == "order.placed":
                    figures[key] = figures.get(key, 0) - cmd.data["quantity"]
        return figures

    def voided(self, state: OrderState) -> frozenset[str]:
        """Placed parts whose line the processor recorded as released before placement."""
        return frozenset(p.id for p in state.parts if p.status is PartStatus.PLACED and (
            (r := self.processor.at((p.sku, p.warehouse)).lines.get((state.order_id, p.id)))
            is not None and r.seq == 0))

    def coordinate(self, event: OrderInput, *, again: bool = False) -> None:
        state = self.states.get(event.order_id)
        got = decide(state, event, Context(self.warehouses, self.snapshot(), self.now,
                                           voided=self.voided(state) if state else frozenset()))
        if again:
            assert got.outcome is Outcome.NOOP, (event, got)
        assert got.outcome is not Outcome.REJECTED, got
        if got.state is not None:
            self.states[event.order_id] = got.state
        self.statuses.setdefault(event.order_id, []).extend(got.statuses)
        if any(s.type in ("order.rejected", "order.cancelled") for s in got.statuses):
            # the status says nothing of the order is reserved: true when it is sent
            assert not any(order_id == event.order_id and r.status in ACTIVE
                           for s in self.processor.keys.values()
                           for (order_id, _), r in s.lines.items()), got.statuses
        for cmd in got.commands:
            sku, _, code = cmd.key.partition("@")
            self.commands.setdefault((sku, code), deque()).append(cmd)
        self.delivered.append(event)

    def verdicts(self, key: Key, events: Sequence[Verdict]) -> None:
        for verdict, order_id, line_id, quantity, reason in events:
            self.ids += 1
            self.reports.setdefault((order_id, key), deque()).append(order_input(
                f"reservation.{verdict}", order_id, at=self.now, id_=f"v{self.ids}",
                line_id=line_id, sku=key[0], warehouse=key[1], quantity=quantity,
                reason=reason))

    def process(self, key: Key) -> None:
        self.verdicts(key, self.processor.apply(key, self.commands[key].popleft(), self.now))

    def busy(self) -> Iterator[tuple[str, Any]]:
        yield from (("request", o) for o, q in self.requests.items() if q)
        yield from (("command", k) for k, q in self.commands.items() if q)
        yield from (("report", k) for k, q in self.reports.items() if q)

    def step(self, what: str, where: Any) -> None:
        if what == "request":
            self.coordinate(self.requests[where].popleft())
        elif what == "command":
            self.process(where)
        else:
            self.coordinate(self.reports[where].popleft())

    def target(self, pick: int) -> Key:
        """Mostly a key where parts are held or on their way: where moving stock matters."""
        keys = sorted({k for k, s in self.processor.keys.items()
                       if any(r.status == "pending" for r in s.lines.values())}
                      | {k for k, q in self.commands.items() if q})
        if not keys or pick % 4 == 0:
            keys = sorted(self.processor.keys)
        return keys[pick % len(keys)]

    def drain(self) -> None:
        for _ in range(10_000):
            pending = next(self.busy(), None)
            if pending is None:
                return
            self.step(*pending)
        raise AssertionError("the coordinator and the processor never settle")


# --- what must hold --------------------------------------------------------------------

_LIFECYCLE = re.compile(
    r"(allocated(,reallocated)*(,(confirmed(,cancelled[^,]*)?|cancelled[^,]*"
    r"|rejected:(stock_lost|expired)))?"
    r"|rejected:(insufficient_stock|expired)|cancelled[^,]*)")


def check(world: World, orders: Sequence[Order]) -> None:
    reserved: dict[tuple[str, str], int] = {}
    for s in world.processor.keys.values():
        for (order_id, line_id), r in s.lines.items():
            if r.status in ACTIVE:
                reserved[order_id, line_id] = r.remaining
    believed = {(o, p.id): p.quantity for o, st_ in world.states.items() for p in st_.parts
                if p.status in (PartStatus.ACCEPTED, PartStatus.CONFIRMED)}
    # no leak, no double hold: the processor reserves exactly the parts held
    assert reserved == believed
    for order in orders:
        said = [word(s) for s in world.statuses.get(order.order_id, [])]
        assert _LIFECYCLE.fullmatch(",".join(said)), said
        state = world.states[order.order_id]
        held = {ln["line_id"]: sum(q for (o, part), q in reserved.items()
                                   if o == order.order_id and part.startswith(
                                       ln["line_id"] + "~")) for ln in order.lines}
        last = said[-1].partition(":")[0]
        if last in ("rejected", "cancelled"):
            assert state.phase in (Phase.REJECTED, Phase.CANCELLED)
            assert not any(held.values()), (said, held)
        elif order.order_id not in world.touched:
            assert state.phase in (Phase.ALLOCATED, Phase.CONFIRMED), state.phase
            assert held == {ln["line_id"]: ln["quantity"] for ln in order.lines}, (said, held)


# --- random worlds ---------------------------------------------------------------------

@st.composite
def worlds(draw: st.DrawFn, *, most_orders: int = 4) -> tuple[tuple[Warehouse, ...],
                                                                dict[Key, int], list[Order]]:
    warehouses = draw(registries())
    stock = {(sku, w.code): draw(st.integers(0, 8)) for sku in SKUS for w in warehouses}
    pinned = pins(warehouses)
    orders = []
    for o in range(draw(st.integers(1, most_orders))):
        lines = tuple(
            {"line_id": f"L{i}", "sku": draw(st.sampled_from(SKUS)),
             "quantity": draw(st.integers(1, 4)),
             "warehouse": draw(pinned)}
            for i in range(draw(st.integers(1, 5))))
        strategy = draw(st.sampled_from(STRATEGIES))
        ship_to = ({"lat": draw(st.integers(-3, 3)), "lon": draw(st.integers(-3, 3))}
                   if strategy == "nearest" or draw(st.booleans()) else None)
        orders.append(Order(f"O{o}", lines, strategy, ship_to))
    return warehouses, stock, orders


ACTIONS = ["deliver"] * 10 + ["redeliver", "shock", "shock", "shock", "receipt", "tick",
                              "confirm", "confirm", "cancel", "foreign", "preempt"]


def play(world: World, orders: Sequence[Order], choices: Sequence[int]) -> None:
    """One random interleaving, then every queue drained."""
    for order in orders:
        world.request(order)
    confirmed: set[str] = set()
    cancelled: set[str] = set()
    for choice in choices:
        action = ACTIONS[choice % len(ACTIONS)]
        pick = choice // len(ACTIONS)
        busy = list(world.busy())
        if action == "deliver" and busy:
            world.step(*busy[pick % len(busy)])
        elif action == "redeliver" and world.delivered:
            event = world.delivered[pick % len(world.delivered)]
            world.coordinate(event, again=True)
        elif action in ("shock", "receipt"):
            key = world.target(pick) if action == "shock" else sorted(world.processor.keys)[
                pick % len(world.processor.keys)]
            units = 1 + pick % 3
            if action == "shock":
                world.verdicts(key, world.processor.shock(key, units))
            else:
                world.processor.at(key).on_hand += units
        elif action == "tick":
            world.tick(1 + pick % 12)
        elif action in ("confirm", "cancel"):
            order_id = orders[pick % len(orders)].order_id
            sent = confirmed if action == "confirm" else cancelled
            if order_id not in sent:
                sent.add(order_id)
                world.send(f"order.{action}-requested", order_id)
        elif action == "foreign" and pick % 3 == 0:  # rare: it cancels the order
            parts = [(o, p) for o, s in world.states.items() for p in s.parts]
            if parts:
                order_id, part = parts[pick % len(parts)]
                world.touched.add(order_id)
                world.commands.setdefault((part.sku, part.warehouse), deque()).append(Output(
                    "order.cancelled", part.key, part.id,
                    {"order_id": order_id, "line_id": part.id, "reason": "ops cleanup"}))
        elif action == "preempt":  # a cancel of a part's line id before it is placed
            order = orders[pick % len(orders)]
            line = order.lines[pick % len(order.lines)]
            # where a part of it may well go: a warehouse holding its SKU
            stocked = [w.code for w in world.warehouses if w.active
                       and world.processor.at((line["sku"], w.code)).sellable > 0]
            codes = stocked or [w.code for w in world.warehouses]
            key = (line["sku"], codes[pick % len(codes)])
            state = world.states.get(order.order_id)
            k = 1 + max((p.k for p in state.parts if p.line_id == line["line_id"]),
                        default=0) if state is not None else 1
            world.touched.add(order.order_id)
            part_id = f"{line['line_id']}~{k + pick % 2}"
            world.commands.setdefault(key, deque()).append(Output(
                "order.cancelled", f"{key[0]}@{key[1]}", part_id,
                {"order_id": order.order_id, "line_id": part_id, "reason": "ops guess"}))
    world.drain()
    for _ in range(3):  # time passes: deadlines, and the grace of parts never judged
        world.tick(20)
        world.drain()


CHOICES = st.lists(st.integers(0, 2**16), min_size=20, max_size=150)


@settings(max_examples=300, deadline=None)
@given(worlds(), CHOICES)
def test_concurrent_orders_end_in_a_consistent_state(
        world_: tuple[tuple[Warehouse, ...], dict[Key, int], list[Order]],
        choices: list[int]) -> None:
    warehouses, stock, orders = world_
    world = World(warehouses, stock)
    play(world, orders, choices)
    check(world, orders)


# --- one order against known stock -----------------------------------------------------


def coverable(order: Order, warehouses: Sequence[Warehouse], stock: dict[Key, int]) -> bool:
    """Gale's condition, by brute force: every set of lines of one SKU fits in the units of
    the warehouses those lines may use (a pinned line its own, if active; others all active)."""
    active = {w.code for w in warehouses if w.active}
    lines = list(order.lines)
    for size in range(1, len(lines) + 1):
        for group in combinations(lines, size):
            for sku in SKUS:
                of_sku = [ln for ln in group if ln["sku"] == sku]
                usable = set().union(*({ln["warehouse"]} & active if ln["warehouse"] else active
                                       for ln in of_sku)) if of_sku else set()
                if sum(ln["quantity"] for ln in of_sku) > sum(
                        max(stock.get((sku, c), 0), 0) for c in usable):
                    return False
    return True


@settings(max_examples=250, deadline=None)
@given(worlds(most_orders=1), st.lists(st.integers(0, 2**16), max_size=40))
def test_one_order_against_known_stock_is_rejected_iff_nothing_covers_it(
        world_: tuple[tuple[Warehouse, ...], dict[Key, int], list[Order]],
        choices: list[int]) -> None:
    warehouses, stock, (order,) = world_
    world = World(warehouses, stock)
    world.request(order)
    for choice in choices:  # deliveries only, in any order, some twice: stock never moves
        busy = list(world.busy())
        if choice % 5 == 0 and world.delivered:
            world.coordinate(world.delivered[choice % len(world.delivered)], again=True)
        elif busy:
            world.step(*busy[choice % len(busy)])
    world.drain()
    said = [word(s) for s in world.statuses[order.order_id]]
    assert said == (["allocated"] if coverable(order, warehouses, stock)
                    else ["rejected:insufficient_stock"])
    check(world, [order])
    parts = world.states[order.order_id].parts
    assert all(p.status in HELD for p in parts) or said != ["allocated"]
