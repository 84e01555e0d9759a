"""Batch writes and reads keep every string exactly, whatever characters ids carry; the
engine's own rows (outbox, positions) are written as one compare-and-set."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from stockflow.adapters.db import store
from stockflow.adapters.db.batches import (
    Advance,
    FencedError,
    OutboxRow,
    commit_batch,
    load_positions,
    pending_outbox,
)
from stockflow.adapters.db.migrate import migrate
from stockflow.devtools.localenv import LocalServices
from stockflow.domain.effects import LedgerEntry
from stockflow.domain.state import (
    PoLine,
    PurchaseOrder,
    Quantities,
    Reservation,
    Severity,
    Status,
    StockState,
)

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


def test_the_engine_rows_advance_only_from_where_they_were(conn: store.Conn) -> None:
    """A batch's outbox rows and positions land together; a member whose position moved
    under it is fenced and writes nothing, neither outbox rows nor any position."""
    a, b = ("in", 0), ("in", 1)

    def batch(offsets: dict[tuple[str, int], Advance], deleting: list[int]) -> list[int]:
        with conn.transaction():
            return commit_batch(conn, "g", store.Writes(), offsets=offsets,
                                outbox=[OutboxRow(0, 2, b"x"), OutboxRow(1, 1, b"y")],
                                delete_outbox=deleting)

    first = batch({a: Advance(-1, 5), b: Advance(-1, 3)}, [])
    assert len(first) == 2
    second = batch({a: Advance(5, 9)}, first)  # the first batch's rows were delivered
    assert [i for i, _ in pending_outbox(conn, "g", [0, 1])] == second
    with pytest.raises(FencedError):  # b's position is 3, not unset: another member's
        batch({a: Advance(9, 12), b: Advance(-1, 4)}, second)
    with pytest.raises(FencedError):
        batch({a: Advance(5, 12)}, second)
    assert load_positions(conn, "g", [a, b]) == {a: 9, b: 3}
    assert [i for i, _ in pending_outbox(conn, "g", [0, 1])] == second
    assert len(batch({}, second)) == 2  # no positions: outbox rows alone


@pytest.mark.parametrize("copy_from", [10**9, 1], ids=["one statement", "COPY first"])
def test_every_kind_of_stock_row_lands_as_written(conn: store.Conn, copy_from: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One batch of every kind of row, read back column by column, awkward text and NULLs
    included: as one statement (a batch of any usual size), and with the ledger rows and
    processed ids COPYed first (a backlog's batch)."""
    monkeypatch.setattr(store, "COPY_FROM", copy_from)
    key, at = "SKU-1@WH-1", datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    ok = StockState(sku="SKU-1", warehouse="WH-1", qty=Quantities(5, 1, 0, 0), version=3,
                    reorder_point=2, safety_stock=0, severity=Severity.OK)
    low = ok._replace(sku="SKU-2", severity=Severity.LOW, reorder_point=9)
    entries = [LedgerEntry(f"ev-{i}", "receipt.received", Quantities(0, 0, 0, 0, 0),
                           Quantities(i, 0, 0, 0, 1), i + 1, ref, ref, ref, at if i % 2 else None,
                           Decimal("2.50") if i % 2 else None, None, i or None, None)
               for i, ref in enumerate([*AWKWARD, None])]
    writes = store.Writes(
        states=[ok, low], ledger=[store.LedgerRow(key, e) for e in entries],
        alerts_changed=[store.AlertRow(ok, "ev-0"), store.AlertRow(low, "ev-1")],
        purchase_orders={(key, 'PO "1"'): PurchaseOrder('PO "1"', {"L1": PoLine(4, 1, False, at)},
                                                        2, False)},
        rejected=[store.RejectedRow(a, key, "invalid_event", a) for a in AWKWARD],
        thresholds=[store.ThresholdRow(key, 3, "ev-0", at, 7, 1, 0, 0)],
        processed=[store.ProcessedRow(e.event_id, key, "t", 0, n, "applied")
                   for n, e in enumerate(entries)])
    with conn.transaction():  # the ok key was low before: its alert is open
        commit_batch(conn, "g", store.Writes(states=[ok]), outbox=[], offsets={},
                     delete_outbox=[])
        conn.execute("INSERT INTO low_stock_alerts (key, severity, available, reorder_point,"
                     " cause_event_id) VALUES (%s, 'low', 1, 2, 'old')", (key,))
    with conn.transaction():
        commit_batch(conn, "g", writes, outbox=[], offsets={}, delete_outbox=[])
    got = conn.execute("SELECT event_id, reference, note, actor, event_time, value, lost,"
                       " on_order_after, version FROM ledger ORDER BY version").fetchall()
    assert got == [(e.event_id, e.reference, e.note, e.actor, e.time, e.value, e.lost,
                    e.after.on_order, e.version) for e in entries]
    assert conn.execute("SELECT key, severity FROM low_stock_alerts").fetchall() == [
        (low.key, "low")]  # the ok key's alert resolved, the low key's opened
    assert conn.execute("SELECT po_id, lines, unnamed FROM purchase_orders").fetchall() == [
        ('PO "1"', {"L1": {"ordered": 4, "received": 1, "cancelled": False,
                           "expected_at": at.isoformat()}}, 2)]
    assert sorted(conn.execute("SELECT event_id, message FROM rejected_events").fetchall()
                  ) == sorted((a, a) for a in AWKWARD)
    assert conn.execute("SELECT set_at, reorder_point FROM threshold_history").fetchall() == [
        (at, 7)]
    assert conn.execute('SELECT event_id, "offset" FROM processed_events ORDER BY 2'
                        ).fetchall() == [(e.event_id, n) for n, e in enumerate(entries)]
