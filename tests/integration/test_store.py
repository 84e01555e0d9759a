"""Batch writes and reads keep every string exactly, whatever characters ids carry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stockflow.adapters.db import store
from stockflow.adapters.db.batches import commit_batch
from stockflow.adapters.db.migrate import migrate
from stockflow.devtools.localenv import LocalServices
from stockflow.domain.state import Quantities, Reservation, Severity, Status, StockState

AWKWARD = ['plain', 'with "quotes"', "back\\slash", "trailing\\", "a,b", "{braces}", "NULL",
           " spaced ", "tab\tand\nnewline", "ünïcødé ✓", "'single'", '\\"mixed\\"']


@pytest.fixture
def conn(services: LocalServices, unique: str) -> store.Conn:
    schema = f"st_{unique}"
    migrate(services.database_url, schema)
    return store.connect(services.database_url, schema)


def test_awkward_ids_round_trip(conn: store.Conn) -> None:
    key = "SKU-1@WH-1"
    due = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
    lines = {(key, order, f"L{i}"): store.LineRow(
        Reservation(order_id=order, line_id=f"L{i}", quantity=i + 1, remaining=i,
                    status=Status.PENDING, expires_at=due if i % 2 else None,
                    backordered=bool(i % 2), line_count=None if i % 3 else i), partition=3)
        for i, order in enumerate(AWKWARD)}
    writes = store.Writes(
        states=[StockState(sku="SKU-1", warehouse="WH-1", qty=Quantities(50, 10, 2, 1),
                           version=7, reorder_point=5, safety_stock=1, severity=Severity.OK)],
        lines=lines,
        refs=[store.RefRow(key, ref, n) for n, ref in enumerate(AWKWARD)],
        processed=[store.ProcessedRow(event_id=ident, key=key, topic="t", partition=0, offset=n,
                                      outcome="applied")
                   for n, ident in enumerate(AWKWARD[::2])],
    )
    with conn.transaction():
        commit_batch(conn, "g", writes, outbox=[], offsets={}, delete_outbox=[])
    got = store.fetch(conn, keys=[key], orders=[(key, o) for o in AWKWARD],
                      refs=[(key, r) for r in AWKWARD], ids=AWKWARD)
    assert got.stock[key] == writes.states[0]
    assert {(key, o, ln): (r, 3) for (k, o), rs in got.lines.items() for ln, r in rs.items()
            } == lines
    assert got.refs == {(key, ref): n for n, ref in enumerate(AWKWARD)}
    assert got.seen == set(AWKWARD[::2])
