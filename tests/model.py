"""An independent replay model of the contract, for checking the processor end to end.

Written straight from ../shared/CONTRACT.md with plain mutable dicts; it shares no code
with stockflow's rules (only the workload's bytes go in). Fed a stream whose outcome does
not depend on cross-topic interleaving, it predicts each key's final quantities and each
order line's (status, quantity, remaining, shipped). With `remediation` it also releases
pending lines after a movement that oversells, as the "Oversell remediation" bullet says
(then the outcome may depend on the interleaving: the model follows the order it is fed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

ACTIVE = ("pending", "confirmed")
KIND_OF = {
    "order.placed": "orders", "order.confirmed": "orders", "order.cancelled": "orders",
    "reservation.expired": "orders", "shipment.dispatched": "shipments",
    "transfer.dispatched": "shipments", "receipt.received": "receipts",
    "return.received": "receipts", "transfer.incoming": "receipts",
    "transfer.received": "receipts", "stock.adjusted": "adjustments",
    "stock.counted": "adjustments", "stock.damaged": "adjustments",
    "stock.thresholds-set": "adjustments", "purchase-order.placed": "receipts",
    "purchase-order.cancelled": "receipts",
}


@dataclass
class Key:
    on_hand: int = 0
    reserved: int = 0
    in_transit: int = 0
    damaged: int = 0
    reorder_point: int = 10
    safety_stock: int = 0
    lines: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    refs: dict[str, int] = field(default_factory=dict)
    # po_id -> the purchase order's events at this key as they came: (type, line_id, units)
    purchases: dict[str, list[tuple[str, str | None, int]]] = field(default_factory=dict)

    @property
    def on_order(self) -> int:
        """Ordered and not received: each purchase order's events replayed in one fixed
        order (placements, receipts naming a line, receipts naming none spread over the
        lines in line-id order, then cancels), so their arrival order cannot matter."""
        total = 0
        for events in self.purchases.values():
            ordered: dict[str, int] = {}
            for t, line, q in events:
                if t == "purchase-order.placed":
                    ordered.setdefault(line or "", q)
            open_ = dict(ordered)
            for t, line, q in events:
                if t == "receipt.received" and line is not None and line in open_:
                    open_[line] = max(open_[line] - q, 0)
            left = sum(q for t, line, q in events if t == "receipt.received" and line is None)
            for line in sorted(open_):
                taken = min(open_[line], left)
                open_[line] -= taken
                left -= taken
            for t, line, _ in events:
                if t == "purchase-order.cancelled":
                    for name in open_ if line is None else [line]:
                        if name in open_:
                            open_[name] = 0
            total += sum(open_.values())
        return total

    def quantities(self) -> tuple[int, int, int, int]:
        return (self.on_hand, self.reserved, self.in_transit, self.damaged)

    def severity(self) -> str:
        available = self.on_hand - self.reserved
        if available <= 0:
            return "out_of_stock"
        return "low" if available <= self.reorder_point else "ok"


class Model:
    def __init__(self, ttl: timedelta = timedelta(minutes=15), *,
                 remediation: bool = False) -> None:
        self.keys: dict[str, Key] = {}
        self.seen: set[str] = set()
        self.ttl = ttl
        self.remediation = remediation
        self.placements = 0  # placements applied so far: a line's "seq" orders them
        self.rejected: list[str] = []

    def key(self, k: str) -> Key:
        return self.keys.setdefault(k, Key())

    def feed(self, topic_kind: str, key: bytes | None, value: bytes) -> None:
        try:
            doc = json.loads(value)
        except ValueError:
            return
        if not isinstance(doc, dict) or len(value) > 64 * 1024:
            return
        type_, data = doc.get("type"), doc.get("data")
        if not isinstance(type_, str) or KIND_OF.get(type_) != topic_kind \
                or not isinstance(data, dict) or key is None:
            return
        k = key.decode()
        if "sku" in data and f"{data.get('sku')}@{data.get('warehouse')}" != k:
            return
        q = data.get("quantity", 1)
        if not isinstance(q, int) or not 1 <= q <= 1_000_000:
            return
        if doc["id"] in self.seen:
            return
        s = self.key(k)
        on_hand, available = s.on_hand, s.on_hand - s.reserved
        try:
            ok = self._apply(k, type_, data, datetime.fromisoformat(doc["time"]))
        except KeyError:
            return  # a required field is missing: schema_violation
        if ok and self.remediation and s.on_hand < on_hand:
            self._remediate(s, min(0, available))
        if ok:
            self.seen.add(doc["id"])
        else:
            self.rejected.append(doc["id"])

    def feed_all(self, items: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        for kind, key, value in items:
            self.feed(kind, key, value)

    def _ref(self, s: Key, ref: str, q: int) -> bool:
        if ref in s.refs:
            return False
        s.refs[ref] = q
        return True

    def _apply(self, k: str, t: str, d: dict[str, Any], at: datetime) -> bool:
        s = self.key(k)
        # None for the parts an event does not name; only events that name both use it
        line = cast("tuple[str, str]", (d.get("order_id"), d.get("line_id")))
        old: dict[str, Any] | None
        if t == "order.placed":
            old = s.lines.get(line)
            if old and (old["q"] or old["status"] != "fulfilled"):
                return True  # placed before, or cancelled before it was placed
            early = old["shipped"] if old else 0  # shipped before it was placed
            q = d["quantity"]
            sellable = s.on_hand - s.reserved - s.safety_stock + early
            if q <= sellable or d.get("allow_backorder"):
                exp = d.get("expires_at")
                left = max(q - early, 0)
                self.placements += 1
                s.lines[line] = {"q": q, "left": left, "shipped": early,
                                 "status": "pending" if left else "fulfilled",
                                 "exp": datetime.fromisoformat(exp) if exp else at + self.ttl,
                                 "backordered": q > sellable, "seq": self.placements}
                s.reserved += left
            else:
                s.lines[line] = {"q": q, "left": 0, "status": "rejected", "exp": None,
                                 "shipped": early}
        elif t == "order.confirmed":
            for (o, ln), r in s.lines.items():
                if o == d["order_id"] and d.get("line_id") in (None, ln) and \
                        r["status"] == "pending":
                    r["status"] = "confirmed"
        elif t == "order.cancelled":
            hit = False
            for (o, ln), r in s.lines.items():
                if o == d["order_id"] and d.get("line_id") in (None, ln):
                    hit = True
                    if r["status"] in ACTIVE:
                        s.reserved -= r["left"]
                        r["left"], r["status"] = 0, "released"
            old = s.lines.get(line)
            if d.get("line_id") is not None and (
                    not hit or (old and old["q"] == 0 and old["status"] == "fulfilled")):
                s.lines[line] = {"q": 0, "left": 0, "status": "released", "exp": None,
                                 "shipped": old["shipped"] if old else 0}
        elif t == "reservation.expired":
            due = s.lines.get(line)
            if due and due["status"] == "pending" and due["exp"] <= at:
                s.reserved -= due["left"]
                due["left"], due["status"] = 0, "expired"
        elif t in ("shipment.dispatched", "transfer.dispatched"):
            ident = d["shipment_id"] if t == "shipment.dispatched" else d["transfer_id"]
            if not self._ref(s, f"{t}|{ident}|{d.get('line_id')}", d["quantity"]):
                return True
            s.on_hand -= d["quantity"]
            if t == "transfer.dispatched":
                dest = f"{k.partition('@')[0]}@{d['to_warehouse']}"
                self._apply(dest, "transfer.incoming", {"transfer_id": ident,
                                                        "quantity": d["quantity"]}, at)
            elif d.get("order_id"):
                self._consume(s, d["order_id"], d.get("line_id"), d["quantity"])
        elif t == "transfer.incoming":
            tid = d["transfer_id"]
            if f"in|{tid}" in s.refs or f"rx|{tid}" in s.refs:
                return True
            s.refs[f"in|{tid}"] = d["quantity"]
            s.in_transit += d["quantity"]
        elif t == "transfer.received":
            if not self._ref(s, f"rx|{d['transfer_id']}", d["quantity"]):
                return True
            s.on_hand += d["quantity"]
            s.in_transit -= s.refs.get(f"in|{d['transfer_id']}", 0)
        elif t in ("receipt.received", "return.received"):
            ident = d["receipt_id"] if t == "receipt.received" else d["return_id"]
            if self._ref(s, f"{t}|{ident}|{d.get('line_id')}", d["quantity"]):
                if d.get("condition") == "damaged":
                    s.damaged += d["quantity"]
                else:
                    s.on_hand += d["quantity"]
                if t == "receipt.received" and d.get("po_id"):
                    s.purchases.setdefault(d["po_id"], []).append(
                        (t, d.get("line_id"), d["quantity"]))
        elif t in ("purchase-order.placed", "purchase-order.cancelled"):
            s.purchases.setdefault(d["po_id"], []).append(
                (t, d.get("line_id"), d.get("quantity", 0)))
        elif t == "stock.adjusted":
            if f"adj|{d['adjustment_id']}" in s.refs:
                return True
            if d["delta"] < 0 and s.on_hand + d["delta"] < 0:
                return False
            s.refs[f"adj|{d['adjustment_id']}"] = d["delta"]
            s.on_hand += d["delta"]
        elif t == "stock.counted":
            if self._ref(s, f"count|{d['count_id']}", d["on_hand"]):
                s.on_hand = d["on_hand"]
        elif t == "stock.damaged":
            if f"dmg|{d['damage_id']}" in s.refs:
                return True
            if d["quantity"] > s.on_hand:
                return False
            s.refs[f"dmg|{d['damage_id']}"] = d["quantity"]
            s.on_hand -= d["quantity"]
            s.damaged += d["quantity"]
        elif t == "stock.thresholds-set":
            s.reorder_point, s.safety_stock = d["reorder_point"], d["safety_stock"]
        return True

    @staticmethod
    def _remediate(s: Key, floor: int) -> None:
        """Release pending, non-backordered lines, newest placement first, until available
        is back to `floor`; whole lines only."""
        newest_first = sorted((r for r in s.lines.values() if r["status"] == "pending"
                               and not r["backordered"]), key=lambda r: -r["seq"])
        for r in newest_first:
            if s.on_hand - s.reserved >= floor:
                return
            s.reserved -= r["left"]
            r["left"], r["status"] = 0, "released"

    @staticmethod
    def _consume(s: Key, order_id: str, line_id: str | None, q: int) -> None:
        if line_id is not None:
            r = s.lines.setdefault((order_id, line_id), {"q": 0, "left": 0, "shipped": 0,
                                                         "status": "fulfilled", "exp": None})
            r["shipped"] += q
            if r["status"] in ACTIVE:
                take = min(q, r["left"])
                r["left"] -= take
                s.reserved -= take
            if r["q"] and r["status"] != "rejected" and r["shipped"] >= r["q"]:
                r["status"] = "fulfilled"
            return
        for (o, ln) in sorted(s.lines):
            r = s.lines[(o, ln)]
            if o != order_id or r["status"] not in ACTIVE or q == 0:
                continue
            take = min(q, r["left"])
            q -= take
            r["left"] -= take
            r["shipped"] += take
            s.reserved -= take
            if r["left"] == 0:
                r["status"] = "fulfilled"

    def line_states(self, k: str) -> dict[tuple[str, str], tuple[str, int, int, int]]:
        """(status, quantity, remaining, shipped) of every line recorded at key `k`."""
        return {line: (r["status"], r["q"], r["left"], r["shipped"])
                for line, r in self.key(k).lines.items()}
