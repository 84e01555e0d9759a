"""Small builders for typed events and envelopes used across the tiers."""

from __future__ import annotations

import io
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from stockflow.contract.events import INPUT_MODELS
from stockflow.domain.inputs import Event
from stockflow.domain.warehouses import Location, Warehouse

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_ids = itertools.count()


def event(type_: str, key: str = "SKU-1@WH-1", *, id_: str | None = None,
          at: datetime | None = None, **data: Any) -> Event:
    sku, _, warehouse = key.partition("@")
    _, model = INPUT_MODELS[type_]
    body = {"sku": sku, "warehouse": warehouse, **data}
    parsed = model.model_validate(body)
    return Event(id_ or f"e{next(_ids)}", type_, at or T0, sku, warehouse, parsed,  # type: ignore[arg-type]
                 key)


def envelope(type_: str, data: dict[str, Any], *, id_: str, at: datetime = T0,
             **extra: Any) -> bytes:
    doc = {"specversion": "1.0", "id": id_, "source": "tests", "type": type_,
           "time": at.isoformat(), "data": data, **extra}
    return json.dumps(doc).encode()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def wh(code: str, priority: int, active: bool = True,
       location: Location | None = None) -> Warehouse:
    """A registered warehouse named after its code."""
    return Warehouse(code, code, priority, active, location)


def workbook(rows: list[list[object]]) -> bytes:
    """An Excel workbook (.xlsx) whose first sheet holds `rows`."""
    import openpyxl  # noqa: PLC0415 - only the tests of workbooks pay for it

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
