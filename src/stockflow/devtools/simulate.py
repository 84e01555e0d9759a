"""`stockflow simulate`: a realistic, open-ended event stream published through the
publisher library at an offered rate.

Thousands of SKUs across several warehouses with Zipf-like popularity; multi-line orders
(published atomically) that are later confirmed and shipped, cancelled, or left to
expire; receipts that replenish (costed, in EUR, around each SKU's own price), returns,
transfers between warehouses in both phases, and cycle counts.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stockflow.adapters.publisher import Publisher

__all__ = ["Simulation", "Simulator"]


@dataclass
class Simulation:
    """What to simulate: how many SKUs and warehouses, at what rate, from which seed."""

    skus: int = 2000
    warehouses: int = 3
    rate: float = 500.0  # offered events per second
    seed: int = 1
    expire_after: timedelta = timedelta(seconds=20)  # for orders left to expire


@dataclass
class _Pending:
    due: float
    action: Callable[[], int]


@dataclass
class Simulator:
    """Publishes a simulated stream through `publisher`, counting what it published by type."""

    publisher: Publisher
    plan: Simulation = field(default_factory=Simulation)
    published: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.plan.seed)  # noqa: S311 - simulated traffic
        self.warehouses = [f"WH-{w}" for w in range(1, self.plan.warehouses + 1)]
        self.skus = [f"SKU-{s:05d}" for s in range(self.plan.skus)]
        # Zipf-like popularity: a few SKUs take most of the orders.
        self.weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(self.skus))]
        # prices from a generator of their own, so costs do not change the traffic's sequence
        self.prices = random.Random(self.plan.seed + 1)  # noqa: S311 - simulated prices
        self.price = {sku: self.prices.uniform(2, 200) for sku in self.skus}
        self.later: deque[_Pending] = deque()
        self.n = 0

    def _key(self) -> tuple[str, str]:
        sku = self.rng.choices(self.skus, self.weights)[0]
        return sku, self.rng.choice(self.warehouses)

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.plan.seed}-{self.n}"

    def _send(self, type_: str, data: dict[str, Any], key: str | None = None) -> int:
        self.publisher.publish(type_, data, key=key)
        self.published[type_] += 1
        return 1

    def _receipt(self, receipt_id: str, sku: str, wh: str, quantity: int) -> int:
        cost = self.price[sku] * self.prices.uniform(0.9, 1.1)  # each delivery's own price
        return self._send("receipt.received", {
            "receipt_id": receipt_id, "sku": sku, "warehouse": wh, "quantity": quantity,
            "unit_cost": f"{cost:.2f}", "currency": "EUR"})

    def seed_stock(self) -> int:
        """Opening receipts for every key, so orders find stock."""
        sent = 0
        for sku in self.skus:
            for wh in self.warehouses:
                sent += self._receipt(f"open-{sku}-{wh}", sku, wh, self.rng.randint(50, 500))
        return sent

    def step(self, now: float) -> int:
        """Publish one piece of traffic (or a due follow-up); returns events published."""
        if self.later and self.later[0].due <= now:
            return self.later.popleft().action()
        r = self.rng.random()
        if r < 0.45:
            return self._order(now)
        sku, wh = self._key()
        if r < 0.65:
            return self._receipt(self._id("R"), sku, wh, self.rng.randint(10, 100))
        if r < 0.75:
            return self._send("return.received", {
                "return_id": self._id("RT"), "sku": sku, "warehouse": wh,
                "quantity": self.rng.randint(1, 3),
                "condition": self.rng.choice(["resellable", "resellable", "damaged"])})
        if r < 0.85:
            return self._transfer(now, sku, wh)
        if r < 0.9:
            return self._send("stock.counted", {"count_id": self._id("C"), "sku": sku,
                                                "warehouse": wh,
                                                "on_hand": self.rng.randint(20, 400)})
        return self._send("shipment.dispatched", {"shipment_id": self._id("S"), "sku": sku,
                                                  "warehouse": wh,
                                                  "quantity": self.rng.randint(1, 5)})

    def _order(self, now: float) -> int:
        order_id = self._id("O")
        lines = []
        for n in range(1, self.rng.randint(1, 3) + 1):
            sku, wh = self._key()
            lines.append({"line_id": str(n), "sku": sku, "warehouse": wh,
                          "quantity": self.rng.randint(1, 4)})
        fate = self.rng.random()
        expires = None
        if fate > 0.9:  # abandoned: expires soon, the sweeper releases it
            expires = datetime.now(UTC) + self.plan.expire_after
        self.publisher.publish_order(order_id, lines, expires_at=expires)
        self.published["order.placed"] += len(lines)
        if fate < 0.75:
            self._later(now + self.rng.uniform(1, 5), lambda: self._confirm_ship(order_id, lines))
        elif fate <= 0.9:
            self._later(now + self.rng.uniform(1, 5), lambda: self._cancel(order_id, lines))
        return len(lines)

    def _confirm_ship(self, order_id: str, lines: list[dict[str, Any]]) -> int:
        sent = 0
        for line in lines:
            key = f"{line['sku']}@{line['warehouse']}"
            sent += self._send("order.confirmed", {"order_id": order_id,
                                                   "line_id": line["line_id"]}, key=key)
            sent += self._send("shipment.dispatched", {
                "shipment_id": f"S-{order_id}-{line['line_id']}", "order_id": order_id,
                "line_id": line["line_id"], "sku": line["sku"],
                "warehouse": line["warehouse"], "quantity": line["quantity"]})
        return sent

    def _cancel(self, order_id: str, lines: list[dict[str, Any]]) -> int:
        return sum(self._send("order.cancelled", {"order_id": order_id,
                                                  "line_id": line["line_id"],
                                                  "reason": "customer"},
                              key=f"{line['sku']}@{line['warehouse']}") for line in lines)

    def _transfer(self, now: float, sku: str, wh: str) -> int:
        dest = self.rng.choice([w for w in self.warehouses if w != wh])
        tid, q = self._id("T"), self.rng.randint(1, 10)
        sent = self._send("transfer.dispatched", {"transfer_id": tid, "sku": sku,
                                                  "warehouse": wh, "to_warehouse": dest,
                                                  "quantity": q})
        self._later(now + self.rng.uniform(2, 6), lambda: self._send(
            "transfer.received", {"transfer_id": tid, "sku": sku, "warehouse": dest,
                                  "quantity": q}))
        return sent

    def _later(self, due: float, action: Callable[[], int]) -> None:
        self.later.append(_Pending(due, action))
        if len(self.later) > 1 and self.later[-2].due > due:
            self.later = deque(sorted(self.later, key=lambda p: p.due))

    def run(self, stop: threading.Event, duration: float | None = None) -> None:
        """Offer `plan.rate` events/s until `stop` is set or `duration` seconds pass."""
        started = time.monotonic()
        sent = 0
        while not stop.is_set():
            now = time.monotonic()
            if duration is not None and now - started >= duration:
                break
            ahead = sent - (now - started) * self.plan.rate
            if ahead > 0:
                time.sleep(min(ahead / self.plan.rate, 0.05))
                continue
            sent += self.step(now)
        self.publisher.flush()

    @property
    def total(self) -> int:
        """Events published so far."""
        return sum(self.published.values())
