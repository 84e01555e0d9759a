"""Agreement checks shared by the end-to-end tests."""

from __future__ import annotations

import json

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
    key; the ledger and reservations add up; every expected output id was emitted."""
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
    assert bad_ledger == []
    assert bad_reserved == []
    assert dupes == (0,)
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
