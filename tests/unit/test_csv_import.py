"""CSV imports, checked without Kafka: every line is either a message or a bad row with
its line number and reason, validated as the processor would parse it."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockflow import StockflowError
from stockflow.adapters import workbooks
from stockflow.adapters.settings import Settings
from stockflow.contract.csv_rows import KINDS
from stockflow.entrypoints.api.imports import ImportKind
from stockflow.usecases.importer import Plan, new_import_id, plan
from tests.factories import workbook

SETTINGS = Settings()


def checked(text: str | bytes, kind: str = "counts", import_id: str = "imp_test") -> Plan:
    data = text.encode() if isinstance(text, str) else text
    return plan(data, kind, import_id=import_id, actor="csv-import:tester",
                file_name="t.csv", settings=SETTINGS)


def bad_lines(found: Plan) -> dict[int, str]:
    return {b.line: b.reason for b in found.bad}


def test_a_valid_file_becomes_one_event_per_row() -> None:
    found = checked("sku,warehouse,on_hand\nA,W1,5\r\n\nB,W2,0\n")
    assert not found.bad
    assert found.lines == [2, 4]  # the blank line 3 is not a row
    docs = [json.loads(m.value or b"") for m in found.messages]
    assert [(m.key, d["type"], d["data"]["on_hand"]) for m, d in zip(
        found.messages, docs, strict=True)] == [(b"A@W1", "stock.counted", 5),
                                                (b"B@W2", "stock.counted", 0)]
    assert all(d["source"] == "csv-import:tester" for d in docs)
    assert [d["id"] for d in docs] == found.event_ids
    assert all(d["data"]["count_id"] == d["id"] for d in docs)  # the default reference


def test_a_purchase_order_file_places_its_lines() -> None:
    found = checked("po_id,sku,warehouse,quantity,line_id,expected_at\n"
                    "PO-1,A,W1,40,1,2026-12-20T00:00:00Z\n"
                    "PO-1,B,W1,0,2,\n"  # the processor refuses 0 units
                    "PO-1,B,W1,12,,\n", "purchase-orders")
    assert bad_lines(found) == {3: "quantity_out_of_range: purchase-order.placed.data.quantity:"
                                   " 0 is outside 1..1000000"}
    docs = [json.loads(m.value or b"") for m in found.messages]
    assert [(d["type"], d["data"]) for d in docs] == [
        ("purchase-order.placed", {"po_id": "PO-1", "sku": "A", "warehouse": "W1",
                                   "quantity": 40, "line_id": "1",
                                   "expected_at": "2026-12-20T00:00:00Z"}),
        ("purchase-order.placed", {"po_id": "PO-1", "sku": "B", "warehouse": "W1",
                                   "quantity": 12})]


def test_the_api_offers_every_kind_of_file() -> None:
    assert set(get_args(ImportKind)) == set(KINDS)


def test_event_ids_derive_from_the_import_id_and_the_line() -> None:
    text = "sku,warehouse,quantity\nA,W1,5\n"
    assert checked(text, "receipts").event_ids == checked(text, "receipts").event_ids
    assert checked(text, "receipts").event_ids != checked(
        text, "receipts", import_id="imp_other").event_ids
    assert new_import_id("key\nretry-1") == new_import_id("key\nretry-1") != new_import_id()


def test_every_bad_row_is_reported_with_its_line_and_reason() -> None:
    found = checked(
        "\ufeffsku,warehouse,delta,reason,time\n"  # an Excel byte-order mark
        "A,W1,-3,broken,\n"  # 2: fine
        "A,W1,0,zero,\n"  # 3: the processor refuses a zero delta
        "A,W1,x,typo,\n"  # 4: not a number
        "A,W1,2.5,half,\n"  # 5: not a whole number
        "A W,W1,1,space in the sku,\n"  # 6: schema
        "A,W1,1,,\n"  # 7: a required value is empty
        "A,W1,1\n"  # 8: too few values
        '"A","W1","4","a quoted\nnote",2026-11-01T10:00:00Z\n'  # 9-10: one row, fine
        "A,W1,1,late,2026-11-01T10:00:00\n"  # 11: a time without an offset
        "A,W1,99999999999999999999,huge,\n",  # 12: out of range
        "adjustments")
    assert found.lines == [2, 9]
    bad = bad_lines(found)
    assert sorted(bad) == [3, 4, 5, 6, 7, 8, 11, 12]
    assert bad[3].startswith("quantity_out_of_range")
    assert "not a whole number" in bad[4] and "not a whole number" in bad[5]
    assert bad[6].startswith("schema_violation")
    assert bad[7] == "reason is empty"
    assert bad[8] == "3 values for 5 columns"
    assert bad[11].startswith("invalid_envelope") and "timezone" in bad[11]
    assert bad[12] == ("quantity_out_of_range: delta 99999999999999999999 is out of range "
                       "(-1,000,000..1,000,000, not 0)")
    assert json.loads(found.messages[1].value or b"")["time"] == "2026-11-01T10:00:00Z"


def test_a_number_past_any_bound_says_the_range_with_the_configured_limits() -> None:
    huge = "1" + "0" * 39  # 40 digits: a whole number, far out of range
    settings = Settings(max_quantity=500, max_level=10**12)
    found = plan(f"sku,warehouse,quantity\nA,W1,{huge}\nA,W1,{'9' * 5000}\n".encode(),
                 "receipts", import_id="imp_test", actor="t", file_name="t.csv",
                 settings=settings)
    assert bad_lines(found) == {
        2: "quantity_out_of_range: quantity 100000000000... (40 digits) is out of range "
           "(1..500)",
        3: "quantity_out_of_range: quantity 999999999999... (5000 digits) is out of range "
           "(1..500)"}
    levels = bad_lines(checked(f"sku,warehouse,on_hand\nA,W1,-{huge}\n"))
    assert levels == {2: "schema_violation: on_hand -10000000000... (40 digits) is out of "
                         "range (0..1,000,000,000)"}


def test_a_bad_header_is_one_bad_row_and_nothing_else_is_read() -> None:
    found = checked("sku,warehouse,qty,extra,sku\nA,W1,5,6,A\n", "receipts")
    assert not found.messages
    [bad] = found.bad
    assert bad.line == 1
    assert "missing column(s) quantity" in bad.reason
    assert "unknown column(s) qty, extra" in bad.reason
    assert "repeated column(s) sku" in bad.reason
    assert checked("").bad[0].line == 1  # empty: no header


def test_undecodable_bytes_and_broken_quotes_are_bad_rows() -> None:
    assert bad_lines(checked(b"sku,warehouse,on_hand\nA,W1,1\n\xff,W1,2\nB,W1,\xfe\n")) == {
        3: "not UTF-8", 4: "not UTF-8"}
    found = checked('sku,warehouse,on_hand\nA,W1,1\n"B,W1,2\n')
    assert [b.line for b in found.bad] == [3]  # where the unclosed quote opens
    assert found.bad[0].reason.startswith("not CSV")


_CELL = st.text(alphabet="AZ09.-_ ,\"x\n", max_size=8)


@given(st.lists(st.tuples(_CELL, _CELL, _CELL), max_size=20))
def test_no_row_is_lost(rows: list[tuple[str, str, str]]) -> None:
    """Whatever the cells hold, each non-blank row is a message or a bad row, once."""
    out = io.StringIO()
    csv.writer(out).writerows([("sku", "warehouse", "on_hand"), *rows])
    found = checked(out.getvalue())
    non_blank = [r for r in rows if any(cell.strip() for cell in r)]
    assert len(found.messages) + len(found.bad) == len(non_blank)
    assert len(found.messages) == len(found.lines) == len(found.event_ids)
    assert len(set(found.lines + [b.line for b in found.bad])) == len(non_blank)


def test_an_excel_workbooks_first_sheet_is_read_as_its_csv_would_be() -> None:
    data = workbook([["sku", "warehouse", "on_hand", "time"],
                      ["A", "W1", 5.0, "2026-11-01T10:00:00Z"],  # Excel keeps numbers as floats
                      ["B", "W1", 2.5, None],  # line 3: not whole
                      ["C", "W2", 0, None]])
    found = checked(data)
    assert bad_lines(found) == {3: "on_hand is not a whole number: '2.5'"}
    docs = [json.loads(m.value or b"") for m in found.messages]
    assert [(d["data"]["sku"], d["data"]["on_hand"]) for d in docs] == [("A", 5), ("C", 0)]
    assert docs[0]["time"] == "2026-11-01T10:00:00Z"


def test_a_zip_that_is_no_workbook_or_unpacks_too_large_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("counts.csv", "sku,warehouse,on_hand\nA,W1,5\n")
    with pytest.raises(StockflowError, match=r"a ZIP archive, not an \.xlsx workbook"):
        checked(archive.getvalue())
    monkeypatch.setattr(workbooks, "MAX_UNPACKED", 1000)
    with pytest.raises(StockflowError, match="would unpack to"):
        checked(workbook([["sku", "warehouse", "on_hand"], ["A", "W1", 1]]))
