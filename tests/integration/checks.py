"""Agreement checks shared by the end-to-end tests."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

import psycopg

from stockflow.contract.emit import output_id
from stockflow.contract.topics import TopicKind
from stockflow.devtools.workload import Workload
from tests.integration.harness import Env, db_quantities, read_topic
from tests.model import Model


def model_of(workload: Workload) -> Model:
    model = Model()
    model.feed_all((i.kind.value, i.key, i.value) for i in workload.setup)
    model.feed_all((i.kind.value, i.key, i.value) for i in workload.stream)
    return model


def assert_agreement(env: Env, workload: Workload) -> None:
    """Postgres, the last stock.changed per key, and the independent model agree on every
    key; the ledger and reservations add up; each thresholds change's values are kept once;
    every expected output id was emitted."""
    model = model_of(workload)
    expected = {k: s.quantities() for k, s in model.keys.items()}
    in_db = db_quantities(env)
    wrong = {k: (in_db.get(k), v) for k, v in expected.items() if in_db.get(k) != v}
    assert not wrong, f"{len(wrong)} keys differ (db, model), e.g. {list(wrong.items())[:5]}"
    assert set(in_db) == set(expected)

    last: dict[str, dict[str, object]] = {}
    ids: set[str] = set()
    for key, value, _ in read_topic(env, TopicKind.STOCK_CHANGED):
        doc = json.loads(value or b"")
        ids.add(doc["id"])
        last[(key or b"").decode()] = doc["data"]
    from_topic = {k: (d["on_hand"], d["reserved"], d["in_transit"], d["damaged"])
                  for k, d in last.items()}
    assert from_topic == expected

    with env.db() as conn:
        bad_ledger = conn.execute(
            "SELECT s.key FROM stock s LEFT JOIN (SELECT key, sum(on_hand_delta) AS d"
            " FROM ledger GROUP BY key) l USING (key) WHERE s.on_hand <> coalesce(l.d, 0)"
        ).fetchall()
        bad_reserved = conn.execute(
            "SELECT s.key FROM stock s LEFT JOIN (SELECT key, sum(remaining) AS r"
            " FROM reservations WHERE status IN ('pending', 'confirmed') GROUP BY key) r"
            " USING (key) WHERE s.reserved <> coalesce(r.r, 0)").fetchall()
        changed = conn.execute(
            "SELECT event_id, key FROM ledger WHERE on_hand_before <> on_hand_after"
            " OR reserved_before <> reserved_after OR in_transit_before <> in_transit_after"
            " OR damaged_before <> damaged_after").fetchall()
        placed = conn.execute(
            "SELECT l.event_id, r.order_id, r.line_id FROM ledger l JOIN processed_events p"
            " USING (event_id) JOIN reservations r ON r.key = l.key"
            " WHERE l.event_type = 'order.placed'").fetchall()
        dupes = conn.execute("SELECT count(*) FROM (SELECT key, version FROM ledger"
                             " GROUP BY key, version HAVING count(*) > 1) d").fetchone()
        # each applied thresholds change has its values kept once, chained to the one before
        set_in_ledger = conn.execute(
            "SELECT key, version, event_id FROM ledger"
            " WHERE event_type = 'stock.thresholds-set' ORDER BY 1, 2").fetchall()
        history = conn.execute(
            "SELECT h.key, h.version, h.event_id, h.reorder_point, h.safety_stock,"
            " h.previous_reorder_point, h.previous_safety_stock, s.reorder_point,"
            " s.safety_stock FROM threshold_history h JOIN stock s USING (key)"
            " ORDER BY 1, 2").fetchall()
    assert bad_ledger == []
    assert bad_reserved == []
    assert dupes == (0,)
    assert set_in_ledger, "no stock.thresholds-set was applied"
    assert [h[:3] for h in history] == set_in_ledger
    for before, after in pairwise(history):
        if before[0] == after[0]:
            assert after[5:7] == before[3:5], (before, after)  # replaced what was set before
        else:
            assert before[3:5] == before[7:9], before  # a key's last: its stock row's
    assert history[-1][3:5] == history[-1][7:9]
    missing = [e for e, k in changed if output_id(str(e), "stock.changed", str(k)) not in ids]
    assert missing == [], f"{len(missing)} stock.changed outputs missing"
    reservation_ids = {json.loads(v or b"")["id"]
                       for _, v, _ in read_topic(env, TopicKind.RESERVATIONS)}
    assert placed, "no order.placed was applied"
    lines_by_event: dict[str, bool] = {}
    for event_id, order_id, line_id in placed:
        line = f"{order_id}/{line_id}"
        hit = any(output_id(str(event_id), t, line) in reservation_ids
                  for t in ("reservation.accepted", "reservation.rejected"))
        lines_by_event[str(event_id)] = lines_by_event.get(str(event_id), False) or hit
    assert all(lines_by_event.values()), "an applied order.placed has no reservation output"

    dlq = read_topic(env, TopicKind.DLQ)
    want = sorted(i.value for i in workload.expected_rejections)
    got = sorted(v or b"" for _, v, _ in dlq)
    assert set(want) <= set(got), "a rejected input is missing from the DLQ"


def assert_orders_hold(conn: psycopg.Connection[tuple[Any, ...]],
                       statuses: Iterable[tuple[bytes | None, bytes | None, Any]],
                       ) -> Counter[str]:
    """Every requested order has an answer and its statuses follow the contract's
    lifecycle; a rejected or cancelled order holds nothing, an allocated one exactly its
    quantities; the units reserved over all keys are the live parts of all orders (no leak,
    no double hold); `statuses` (the order-status topic's key, value and headers) say what
    Postgres says, and a status seen twice carries the same id and data. Returns how many
    orders ended in each status."""
    lines = {}
    for state in conn.execute("SELECT state FROM orders"):
        request = state[0]["request"]
        if request is not None:
            lines[request["order_id"]] = {ln["line_id"]: ln["quantity"]
                                          for ln in request["lines"]}
    history: dict[str, list[str]] = {}
    for order_id, type_ in conn.execute("SELECT order_id, type FROM order_statuses ORDER BY seq"):
        history.setdefault(str(order_id), []).append(str(type_).removeprefix("order."))
    held: dict[str, Counter[str]] = {}
    for order_id, line_id, remaining in conn.execute(
            "SELECT order_id, line_id, remaining FROM reservations"
            " WHERE status IN ('pending', 'confirmed')"):
        line = str(line_id).split("~")[0]
        held.setdefault(str(order_id), Counter())[line] += int(str(remaining))
    reserved = conn.execute("SELECT coalesce(sum(reserved), 0) FROM stock").fetchone()
    live = conn.execute("SELECT coalesce(sum(quantity), 0) FROM order_parts"
                        " WHERE status IN ('placed', 'accepted', 'confirmed')").fetchone()
    assert set(history) == set(lines), "every requested order has an answer"
    ends: Counter[str] = Counter()
    for order_id, said in history.items():
        _lifecycle(order_id, said)
        last = said[-1]
        ends[last] += 1
        if last in ("rejected", "cancelled"):
            assert not held.get(order_id), (order_id, said, held.get(order_id))
        else:  # allocated, reallocated or confirmed: exactly its quantities
            assert held.get(order_id) == Counter(lines[order_id]), (order_id, said)
    assert reserved == live, "the units reserved are the live parts of all orders"
    assert sum(sum(c.values()) for c in held.values()) == int(str(reserved[0] if reserved
                                                                  else 0))
    _statuses_agree(statuses, history)
    return ends


_FIRST = {"allocated", "rejected", "cancelled"}
_ENDS = {"confirmed", "cancelled", "rejected"}


def _lifecycle(order_id: str, said: list[str]) -> None:
    assert said[0] in _FIRST, (order_id, said)
    rest = said[1:]
    if said[0] != "allocated":
        assert not rest, (order_id, said)
        return
    while rest and rest[0] == "reallocated":
        rest = rest[1:]
    if rest:
        assert rest[0] in _ENDS, (order_id, said)
        assert rest[1:] in ([], ["cancelled"]) and (rest[0] == "confirmed" or not rest[1:]), (
            order_id, said)


def _statuses_agree(statuses: Iterable[tuple[bytes | None, bytes | None, Any]],
                    history: dict[str, list[str]]) -> None:
    seen: dict[str, bytes] = {}
    on_topic: dict[str, list[str]] = {}
    for key, value, _ in statuses:
        doc = json.loads(value or b"{}")
        data = json.dumps(doc["data"], sort_keys=True).encode()
        if doc["id"] in seen:
            assert seen[doc["id"]] == data, doc["id"]
            continue
        seen[doc["id"]] = data
        assert key == doc["data"]["order_id"].encode()
        on_topic.setdefault(doc["data"]["order_id"], []).append(
            doc["type"].removeprefix("order."))
    assert on_topic == history
