"""Builders for the order coordinator's tests: typed inputs, `Flow`, which feeds one
order's events to `orders.decide` and remembers what came out, and random registries."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from stockflow.contract.events import ORDER_INPUT_MODELS
from stockflow.contract.outputs import STATUS_MODELS
from stockflow.domain.effects import Output
from stockflow.domain.order_inputs import OrderInput
from stockflow.domain.order_state import Context, OrderDecision, OrderPart, OrderState
from stockflow.domain.orders import decide
from stockflow.domain.remediation import REASON as REMEDIATION
from stockflow.domain.warehouses import Location, Warehouse
from tests.factories import T0

_ids = itertools.count()


def order_input(type_: str, order_id: str = "O", *, at: datetime = T0, id_: str | None = None,
                **data: Any) -> OrderInput:
    _, model = ORDER_INPUT_MODELS[type_]
    parsed: Any = model.model_validate({"order_id": order_id, **data})
    return OrderInput(id_ or f"c{next(_ids)}", type_, at, parsed, order_id)


def line(line_id: str, sku: str, quantity: int, pin: str | None = None) -> dict[str, Any]:
    return {"line_id": line_id, "sku": sku, "quantity": quantity, "warehouse": pin}


def report(word: str, part: OrderPart, order_id: str = "O", reason: str | None = None,
           at: datetime = T0) -> OrderInput:
    return order_input(f"reservation.{word}", order_id, at=at, line_id=part.id, sku=part.sku,
                       warehouse=part.warehouse, quantity=part.quantity, reason=reason)


def word(status: Output) -> str:
    """`allocated`, or `rejected:insufficient_stock`, `cancelled:part_released`..."""
    name = status.type.removeprefix("order.")
    reason = status.data.get("reason")
    return f"{name}:{reason}" if reason else name


@dataclass
class Flow:
    """One order's life. `stock` is the processor's sellable per (sku, warehouse): the
    verdicts `say` reports move it as the processor would (a remediation's release gives
    nothing back: the movement took the units), and tests set it where stock moved. The
    coordinator reads it minus the parts in flight, as the shell will."""

    warehouses: tuple[Warehouse, ...]
    stock: dict[tuple[str, str], int]
    order_id: str = "O"
    now: datetime = T0
    ttl: timedelta = timedelta(minutes=15)
    state: OrderState | None = None
    decisions: list[OrderDecision] = field(default_factory=list)
    voided: frozenset[str] = frozenset()  # parts the processor will never judge

    @property
    def last(self) -> OrderDecision:
        return self.decisions[-1]

    def snapshot(self) -> dict[tuple[str, str], int]:
        figures = dict(self.stock)
        for p in self.state.parts if self.state is not None else ():
            if p.status == "placed":
                figures[p.sku, p.warehouse] = figures.get((p.sku, p.warehouse), 0) - p.quantity
        return figures

    def send(self, event: OrderInput) -> OrderDecision:
        got = decide(self.state, event, Context(self.warehouses, self.snapshot(), self.now,
                                                self.ttl, self.voided))
        for status in got.statuses:
            _, model = STATUS_MODELS[status.type]
            model.model_validate(status.data)  # every status has its model's shape
        self.state = got.state
        self.decisions.append(got)
        return got

    def request(self, *lines: Mapping[str, Any], **fields: Any) -> OrderDecision:
        return self.send(order_input("order.requested", self.order_id, at=self.now,
                                     lines=lines, **fields))

    def ask(self, type_: str, **data: Any) -> OrderDecision:
        """order.confirm-requested, order.cancel-requested or order.expired."""
        return self.send(order_input(type_, self.order_id, at=self.now, **data))

    def part(self, part_id: str) -> OrderPart:
        assert self.state is not None
        return next(p for p in self.state.parts if p.id == part_id)

    def say(self, verdict: str, *part_ids: str, reason: str | None = None) -> OrderDecision:
        """The processor's reservation.<verdict> for each part, in turn."""
        for part_id in part_ids:
            part = self.part(part_id)
            key = (part.sku, part.warehouse)
            if verdict == "accepted" and part.status == "placed":
                self.stock[key] = self.stock.get(key, 0) - part.quantity
            elif verdict in ("released", "expired") and reason != REMEDIATION \
                    and part.status in ("accepted", "confirmed"):
                self.stock[key] = self.stock.get(key, 0) + part.quantity
            self.send(report(verdict, part, self.order_id, reason, self.now))
        return self.last

    def placed(self) -> list[str]:
        """The parts placed and not judged yet."""
        assert self.state is not None
        return [p.id for p in self.state.parts if p.status == "placed"]

    def releasing(self) -> list[str]:
        """The live parts the coordinator told to release."""
        assert self.state is not None
        return [p.id for p in self.state.parts
                if p.cancel_sent and p.status in ("placed", "accepted", "confirmed")]

    def statuses(self) -> list[str]:
        return [word(s) for d in self.decisions for s in d.statuses]

    def commands(self, type_: str) -> list[Output]:
        return [c for d in self.decisions for c in d.commands if c.type == type_]

    def where(self) -> dict[str, tuple[str, int, str]]:
        """part id -> (warehouse, quantity, status)"""
        assert self.state is not None
        return {p.id: (p.warehouse, p.quantity, p.status.value) for p in self.state.parts}


LOCATED = st.none() | st.builds(Location, st.integers(-3, 3).map(float),
                                st.integers(-3, 3).map(float))


@st.composite
def registries(draw: st.DrawFn) -> tuple[Warehouse, ...]:
    """2-6 warehouses, about one in five inactive, some without a location."""
    return tuple(Warehouse(f"W{i}", f"W{i}", draw(st.integers(1, 3)),
                           draw(st.sampled_from([True, True, True, True, False])), draw(LOCATED))
                 for i in range(draw(st.integers(2, 6))))


def pins(warehouses: tuple[Warehouse, ...]) -> st.SearchStrategy[str | None]:
    """A line's warehouse: mostly none, else an active one. A pin to an inactive one is
    dead-lettered before any allocation (test_orders.py), and inactive warehouses still
    hold stock nobody may take."""
    active = [w.code for w in warehouses if w.active]
    return st.none() | st.none() | st.none() | st.sampled_from(active) if active else st.none()
