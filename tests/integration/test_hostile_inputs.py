"""Hostile input, generated: malformed, extreme and adversarial messages (nesting, huge
numbers, odd unicode, NUL, timestamps at the calendar's edges, oversized headers and keys,
wrong types everywhere) go through parse -> rules -> a real Postgres batch write. Nothing
raises past the edge, every message is applied or rejected with a contract reason (never
the processing_error kept for what the edge did not foresee), and the batch commits.

Examples per run: STOCKFLOW_HOSTILE_EXAMPLES (default 40, which CI runs); a long run is
`STOCKFLOW_HOSTILE_EXAMPLES=5000 scripts/test tests/integration/test_hostile_inputs.py`.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockflow.adapters.db import store
from stockflow.adapters.db.batches import PgBatchStore
from stockflow.contract.emit import DLQ_MAX_BYTES
from stockflow.contract.events import INPUT_MODELS, Reason
from stockflow.contract.topics import TopicKind
from stockflow.devtools.localenv import LocalServices
from stockflow.domain.inputs import DEFAULT_LIMITS
from stockflow.domain.state import Policy
from stockflow.engine.batch import Consumed
from stockflow.engine.cache import StateCache
from stockflow.engine.checkpoint import commit
from stockflow.engine.stock import prepare
from tests.integration.harness import make_env

EXAMPLES = int(os.environ.get("STOCKFLOW_HOSTILE_EXAMPLES", "40"))
KEY = "SKU-1@WH-1"

BASE: dict[str, dict[str, Any]] = {
    "order.placed": {"order_id": "O1", "line_id": "1", "quantity": 2,
                     "expires_at": "2026-01-01T00:15:00Z", "line_count": 2},
    "order.confirmed": {"order_id": "O1"},
    "order.cancelled": {"order_id": "O1", "line_id": "1", "reason": "customer"},
    "reservation.expired": {"order_id": "O1", "line_id": "1"},
    "shipment.dispatched": {"shipment_id": "S1", "order_id": "O1", "line_id": "1",
                            "quantity": 2},
    "transfer.dispatched": {"transfer_id": "T1", "to_warehouse": "WH-2", "quantity": 3},
    "transfer.incoming": {"transfer_id": "T2", "from_warehouse": "WH-3", "quantity": 3},
    "transfer.received": {"transfer_id": "T2", "quantity": 3},
    "receipt.received": {"receipt_id": "R1", "quantity": 5, "po_id": "P1"},
    "return.received": {"return_id": "RT1", "quantity": 1, "condition": "damaged"},
    "stock.adjusted": {"adjustment_id": "A1", "delta": -1, "reason": "audit"},
    "stock.counted": {"count_id": "C1", "on_hand": 40},
    "stock.damaged": {"damage_id": "D1", "quantity": 1},
    "stock.thresholds-set": {"reorder_point": 5, "safety_stock": 1},
}

EDGE_TIMES = ["0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "1969-12-31T23:59:59Z",
              "1970-01-01T00:00:00Z", "8999-12-31T23:59:59.999999Z", "9000-01-01T00:00:00Z",
              "9999-12-31T23:59:59Z", "9999-12-31T23:00:00-05:00", "2026-02-30T00:00:00Z",
              "2026-01-01T00:00:00", "2026-01-01T24:00:00Z", "not a time", ""]
ODD_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
                   max_size=40) | st.sampled_from([
                       "\x00", "a\x00b", "\u202e\u202d", "\ufeff", "\uffff", "e\u0301" * 50,
                       "\U0001f4a9" * 30, "x" * 300, " ", "@", "SKU@WH"])
NUMBERS = st.integers(-(2**70), 2**70) | st.sampled_from(
    [0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63), 10**6, 10**6 + 1, 10**9 + 1]) \
    | st.floats(allow_nan=False, allow_infinity=False)
LEAVES = st.none() | st.booleans() | NUMBERS | ODD_TEXT | st.sampled_from(EDGE_TIMES)
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(ODD_TEXT, inner, max_size=3), max_leaves=8)


@st.composite
def document(draw: st.DrawFn) -> dict[str, Any]:
    """A valid envelope, then up to three fields made hostile or removed."""
    type_ = draw(st.sampled_from(sorted(BASE)))
    # ids mostly new, references and lines from a small pool: new, repeated and interacting
    data = {k: f"{v}-{draw(st.integers(0, 30))}" if k.endswith("_id") else v
            for k, v in BASE[type_].items()}
    doc: dict[str, Any] = {
        "specversion": "1.0", "id": str(draw(st.uuids())), "source": "hostile",
        "type": type_, "time": "2026-01-01T00:00:00Z", "subject": KEY,
        "data": {"sku": "SKU-1", "warehouse": "WH-1", **data}}
    for _ in range(draw(st.integers(0, 3))):
        inner = doc.get("data")
        target = inner if isinstance(inner, dict) and draw(st.booleans()) else doc
        field = draw(st.sampled_from(sorted(target)) | ODD_TEXT if target else ODD_TEXT)
        if draw(st.integers(0, 4)) == 0:
            target.pop(field, None)
        else:
            target[field] = draw(VALUES)
    return doc


RAW_EDITS = st.sampled_from([
    lambda b: b[: len(b) // 2],  # truncated
    lambda b: b.replace(b'"O1-', b'"\\ud800'),  # lone surrogate
    lambda b: b.replace(b'"O1-', b'"\\u0000'),  # NUL inside a string
    lambda b: b.replace(b'"2026-01-01T00:00:00Z"', b'"\\u0000"'),
    lambda b: b.replace(b"2", b"1e400", 1),  # a number no float holds
    lambda b: b.replace(b"5", b"500000000000000000000000000000000000000", 1),
    lambda b: b.replace(b'"hostile"', b"[" * 3000 + b"]" * 3000),  # deep nesting
    lambda b: b.replace(b'"sku"', b'"sku", "sku"'),  # a key repeated: invalid JSON
    lambda b: b"\xff\xfe" + b,  # not UTF-8
    lambda b: b + b"x" * 70_000,  # oversized
    lambda b: b"[" + b + b"]",  # not an object
])
KEYS = st.sampled_from([KEY.encode(), b"SKU-2@WH-1", b"\xff\xfe@\x00", b"", b"k" * 5000,
                        "SKU-\u00e9@WH-1".encode()]) | st.none()
HEADERS = st.none() | st.lists(st.tuples(ODD_TEXT, st.binary(max_size=64)), max_size=4) \
    | st.just([("big", b"h" * 400_000), ("bigger", b"h" * 600_000)])


@st.composite
def message(draw: st.DrawFn, offset: int) -> Consumed:
    """Mostly on its own topic, with its own key and whole bytes, so that some events are
    applied and the rejections are each for a reason of their own."""
    doc = draw(document())
    value = json.dumps(doc).encode()
    if draw(st.integers(0, 2)) == 0:
        value = draw(RAW_EDITS)(value)
    home = INPUT_MODELS.get(str(doc.get("type")), (TopicKind.ORDERS, None))[0].value
    topic = home if draw(st.integers(0, 4)) else draw(st.sampled_from(
        ["orders", "shipments", "receipts", "adjustments"]))
    key = KEY.encode() if draw(st.integers(0, 3)) else draw(KEYS)
    return Consumed(topic, 0, offset, key, value, draw(HEADERS))


@st.composite
def batch(draw: st.DrawFn) -> list[Consumed]:
    size = draw(st.integers(1, 12))
    return [draw(message(offset)) for offset in range(size)]


def test_hostile_batches_are_applied_or_rejected_and_always_commit(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique, partitions=1)
    batches = PgBatchStore(lambda autocommit: store.connect(
        env.settings.dsn(), env.settings.database_schema, autocommit=autocommit),
        env.settings.group_id)
    cache = StateCache(Policy(), max_entries=100_000)
    positions: dict[tuple[str, int], int] = {}
    contract = {r.value for r in Reason} - {Reason.PROCESSING_ERROR.value}
    seen = {"applied": 0, "rejected": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(batch())
    def run(msgs: list[Consumed]) -> None:
        base = max(positions.values(), default=0)
        named = [m._replace(topic=env.settings.topic_prefix + m.topic, offset=base + m.offset)
                 for m in msgs]  # offsets move on from batch to batch
        prepared = prepare(batches.reads, cache, named, topics=env.topics, policy=Policy(),
                           limits=DEFAULT_LIMITS, positions=positions)
        commit(batches, prepared, delete_outbox=[])
        positions.update({tp: nxt for tp, (_, nxt) in prepared.offsets.items()})
        outcomes = prepared.report.events
        assert sum(outcomes.values()) == len(named)
        assert set(prepared.report.rejects) <= contract, prepared.report.rejects
        for msg in prepared.messages:
            size = len(msg.key or b"") + len(msg.value or b"")
            assert size + sum(len(n) + len(v) for n, v in msg.headers) <= DLQ_MAX_BYTES
        seen["applied"] += sum(n for (_, _, o), n in outcomes.items() if o == "applied")
        seen["rejected"] += sum(prepared.report.rejects.values())

    try:
        run()
    finally:
        batches.close()
    assert seen["rejected"] > 0
    assert seen["applied"] > 0
    with store.connect(env.settings.dsn(), env.settings.database_schema) as check:
        bad = check.execute("SELECT count(*) FROM stock s WHERE on_hand <> (SELECT"
                            " coalesce(sum(on_hand_delta), 0) FROM ledger l"
                            " WHERE l.key = s.key)").fetchone()
    assert bad == (0,)
    print(f"\nhostile examples: {EXAMPLES}, events applied {seen['applied']}, "
          f"rejected {seen['rejected']} ({datetime.now(UTC):%H:%M:%S})")
