"""A generated, realistic event stream for end-to-end tests and the benchmark.

Every input type appears, with repeated event ids, references re-sent under new ids,
invalid messages of every DLQ reason, and a random interleaving across topics (a
shipment may come before its order.placed). The stream is built so that its final state
does not depend on how the topics interleave: stock is ample where orders are placed,
shipments of order lines name their line (a line ships whole, split in two, a few units
over, or partly or wholly after a cancel), and rejections are of amounts no interleaving
could allow.
The `setup` part (opening stock and thresholds) must be processed before the `stream`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from stockflow.contract.topics import TopicKind

__all__ = ["Item", "Workload", "generate"]

OPENING = 5_000
HUGE = 900_000  # more than any key can ever hold in a generated stream


@dataclass(frozen=True, slots=True)
class Item:
    """One message to publish, and what it must become (its id, type, or its DLQ reason)."""

    kind: TopicKind
    key: bytes | None
    value: bytes
    id: str | None = None
    type: str | None = None
    reason: str | None = None  # the DLQ reason this item must get, when it must be rejected


@dataclass
class Workload:
    """A generated stream: the setup to publish first, the stream, and its keys."""

    setup: list[Item] = field(default_factory=list)
    stream: list[Item] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    @property
    def expected_rejections(self) -> list[Item]:
        """The stream's items that must end in the DLQ."""
        return [i for i in self.stream if i.reason is not None]


_TOPIC = {
    "order.placed": TopicKind.ORDERS, "order.confirmed": TopicKind.ORDERS,
    "order.cancelled": TopicKind.ORDERS, "reservation.expired": TopicKind.ORDERS,
    "shipment.dispatched": TopicKind.SHIPMENTS, "transfer.dispatched": TopicKind.SHIPMENTS,
    "receipt.received": TopicKind.RECEIPTS, "return.received": TopicKind.RECEIPTS,
    "transfer.received": TopicKind.RECEIPTS, "stock.adjusted": TopicKind.ADJUSTMENTS,
    "stock.counted": TopicKind.ADJUSTMENTS, "stock.damaged": TopicKind.ADJUSTMENTS,
    "stock.thresholds-set": TopicKind.ADJUSTMENTS,
}


class _Builder:
    def __init__(self, seed: int, base: datetime) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        self.base = base
        self.n = 0
        self.queues: dict[tuple[str, TopicKind], list[Item]] = {}
        self.seed = seed
        self.pushed = 0

    def ident(self) -> str:
        self.n += 1
        return f"ev-{self.seed}-{self.n}"

    def item(self, type_: str, key: str, data: dict[str, Any], *, reason: str | None = None,
             at: datetime | None = None) -> Item:
        sku, _, wh = key.partition("@")
        ident = self.ident()
        doc = {"specversion": "1.0", "id": ident, "source": "workload", "type": type_,
               "time": (at or self.base).isoformat(),
               "data": {"sku": sku, "warehouse": wh, **data}}
        return Item(_TOPIC[type_], key.encode(), json.dumps(doc).encode(), ident, type_, reason)

    def push(self, item: Item) -> None:
        key = (item.key or b"").decode()
        self.queues.setdefault((key, item.kind), []).append(item)
        self.pushed += 1

    def add(self, type_: str, key: str, data: dict[str, Any], **kw: Any) -> Item:
        it = self.item(type_, key, data, **kw)
        self.push(it)
        return it

    def merged(self) -> list[Item]:
        """A random interleaving that keeps each (key, topic) queue in order: each queue's
        items get sorted random positions, then all items are ordered by position."""
        placed: list[tuple[float, int, Item]] = []
        for queue in self.queues.values():
            spots = sorted(self.rng.random() for _ in queue)
            placed.extend((spot, len(placed), item) for spot, item in zip(spots, queue,
                                                                         strict=True))
        placed.sort(key=lambda t: (t[0], t[1]))
        return [item for _, _, item in placed]


def generate(events: int = 20_000, skus: int = 200, warehouses: int = 3, seed: int = 7,
             base: datetime | None = None) -> Workload:
    """About `events` stream events over `skus * warehouses` keys."""
    b = _Builder(seed, base or datetime.now().astimezone())
    rng = b.rng
    whs = [f"WH-{w}" for w in range(1, warehouses + 1)]
    keys = [f"SKU-{s:05d}@{w}" for s in range(skus) for w in whs]
    oversold = set(rng.sample(keys, max(1, len(keys) // 20)))
    normal = [k for k in keys if k not in oversold]

    wl = Workload(keys=keys)
    for i, key in enumerate(keys):
        opening = {"receipt_id": f"open-{i}", "quantity": OPENING} if i % 3 else None
        if opening:
            wl.setup.append(b.item("receipt.received", key, opening))
        else:
            wl.setup.append(b.item("stock.counted", key, {"count_id": f"open-{i}",
                                                         "on_hand": OPENING}))
        wl.setup.append(b.item("stock.thresholds-set", key, {
            "reorder_point": rng.choice([0, 10, 50, OPENING - 200, OPENING + 500]),
            "safety_stock": rng.choice([0, 0, 5, 20])}))

    for key in oversold:
        b.add("order.placed", key, {"order_id": f"bo-{key}", "line_id": "1", "quantity": HUGE,
                                    "allow_backorder": True})
        b.add("shipment.dispatched", key, {"shipment_id": f"big-{key}",
                                           "quantity": OPENING + 100})

    movements: list[Item] = []
    orders = 0
    while b.pushed < events:
        op = rng.choices(["line", "ship", "transfer", "receipt", "return", "adjust", "damage",
                          "reject", "resend", "dup", "invalid"],
                         [40, 8, 4, 8, 4, 5, 3, 2, 3, 3, 1])[0]
        key = rng.choice(normal)
        if op == "line":
            orders += 1
            _order(b, f"O-{seed}-{orders}", rng.sample(normal, rng.randint(1, min(3, len(normal)))))
        elif op == "transfer":
            if len(whs) > 1:  # a transfer needs another warehouse
                _transfer(b, key, whs, oversold)
        elif op == "reject":
            _always_rejected(b, key)
        elif op in ("resend", "dup"):
            _repeat(b, movements, resend=op == "resend")
        elif op == "invalid":
            for item in _invalid(b, key):
                b.push(item)
        else:
            movements.append(_movement(b, op, key))
    wl.stream = b.merged()
    return wl


def _movement(b: _Builder, op: str, key: str) -> Item:
    q = b.rng.randint(1, 20)
    match op:
        case "ship":
            return b.add("shipment.dispatched", key, {"shipment_id": b.ident(), "quantity": q})
        case "receipt":
            return b.add("receipt.received", key, {"receipt_id": b.ident(), "line_id": "1",
                                                   "quantity": q, "po_id": "PO"})
        case "return":
            return b.add("return.received", key, {
                "return_id": b.ident(), "quantity": q,
                "condition": b.rng.choice(["resellable", "damaged"])})
        case "adjust":
            return b.add("stock.adjusted", key, {"adjustment_id": b.ident(),
                                                 "delta": b.rng.choice([-q, q]),
                                                 "reason": "recount"})
    return b.add("stock.damaged", key, {"damage_id": b.ident(), "quantity": q})


def _transfer(b: _Builder, key: str, whs: list[str], oversold: set[str]) -> None:
    sku, _, wh = key.partition("@")
    dest = f"{sku}@{b.rng.choice([w for w in whs if w != wh])}"
    if dest in oversold:
        return
    q, tid = b.rng.randint(1, 20), b.ident()
    b.add("transfer.dispatched", key, {"transfer_id": tid, "quantity": q,
                                       "to_warehouse": dest.partition("@")[2]})
    b.add("transfer.received", dest, {"transfer_id": tid, "quantity": q})


def _repeat(b: _Builder, movements: list[Item], *, resend: bool) -> None:
    """A duplicate (same bytes, same id) or a re-sent reference under a new id."""
    if not movements:
        return
    orig = b.rng.choice(movements)
    if not resend:
        b.push(orig)
        return
    doc = json.loads(orig.value)
    doc["id"] = b.ident()
    b.push(Item(orig.kind, orig.key, json.dumps(doc).encode(), doc["id"], orig.type))


def _order(b: _Builder, order_id: str, keys: list[str]) -> None:
    rng = b.rng
    for n, key in enumerate(keys, 1):
        line, q = str(n), rng.randint(1, 20)
        fate = rng.choices(["pending", "confirm", "cancel", "ship", "confirm_ship", "expire",
                            "cancel_first", "dup"], [10, 15, 10, 25, 20, 8, 4, 8])[0]
        ids = {"order_id": order_id, "line_id": line}
        if fate == "cancel_first":
            b.add("order.cancelled", key, {**ids, "reason": "customer"})
        placed = {**ids, "quantity": q, "line_count": len(keys)}
        if fate == "expire":
            placed["expires_at"] = (b.base - timedelta(hours=1)).isoformat()
        first = b.add("order.placed", key, placed)
        if fate == "dup":
            b.push(first)
        if fate in ("confirm", "confirm_ship"):
            b.add("order.confirmed", key, ids)
        if fate == "cancel":
            b.add("order.cancelled", key, {**ids, "reason": "customer"})
            if rng.random() < 0.3:  # some or all of it had left already
                _ship_line(b, key, ids, [rng.randint(1, q)])
        if fate == "expire":
            b.add("reservation.expired", key, ids)
        if fate in ("ship", "confirm_ship"):
            shape = rng.choices(["whole", "split", "over"], [6, 3, 1])[0]
            cut = rng.randint(1, q - 1) if shape == "split" and q > 1 else q
            parts = [cut, q - cut] if cut < q else [q]
            _ship_line(b, key, ids, parts + ([rng.randint(1, 5)] if shape == "over" else []))


def _ship_line(b: _Builder, key: str, ids: dict[str, str], parts: list[int]) -> None:
    """Shipments naming the line, one per part (each its own shipment_id)."""
    for n, part in enumerate(parts, 1):
        suffix = "" if n == 1 else f"-{n}"
        b.add("shipment.dispatched", key, {
            "shipment_id": f"S-{ids['order_id']}-{ids['line_id']}{suffix}", "quantity": part,
            **ids})


def _always_rejected(b: _Builder, key: str) -> None:
    kind = b.rng.choice(["damage", "adjust", "order"])
    if kind == "damage":
        b.add("stock.damaged", key, {"damage_id": b.ident(), "quantity": HUGE},
              reason="negative_result")
    elif kind == "adjust":
        b.add("stock.adjusted", key, {"adjustment_id": b.ident(), "delta": -HUGE,
                                      "reason": "shrink"}, reason="negative_result")
    else:  # accepted by the parser, rejected as a reservation: no DLQ, an oversell
        b.add("order.placed", key, {"order_id": b.ident(), "line_id": "1", "quantity": HUGE})


def _invalid(b: _Builder, key: str) -> list[Item]:
    """One message for each parse-time DLQ reason."""
    sku, _, wh = key.partition("@")
    k = key.encode()

    def raw(body: object, reason: str, kind: TopicKind = TopicKind.RECEIPTS,
            rkey: bytes | None = k) -> Item:
        value = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Item(kind, rkey, value, None, None, reason)

    def env(type_: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"specversion": "1.0", "id": b.ident(), "source": "workload", "type": type_,
                "time": b.base.isoformat(), "data": {"sku": sku, "warehouse": wh, **data}}

    good = {"receipt_id": "bad", "quantity": 1}
    return [
        raw(b"\x00not json", "invalid_json"),
        raw({"specversion": "0.3", "id": "x"}, "invalid_envelope"),
        raw(env("receipt.teleported", good), "unknown_type"),
        raw(env("receipt.received", good), "wrong_topic", TopicKind.ADJUSTMENTS),
        raw(env("receipt.received", {"quantity": 1}), "schema_violation"),
        raw(env("receipt.received", {**good, "quantity": 0}), "quantity_out_of_range"),
        raw(env("receipt.received", good), "key_mismatch", rkey=f"{sku}@ELSEWHERE".encode()),
        raw(env("receipt.received", {**good, "pad": "x" * 70_000}), "oversized"),
    ]
