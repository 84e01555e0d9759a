"""The literals and rows the stock store sends: the fast paths (no value needs escaping, no
NULL) give what the per-value paths give, and a ledger row's values land in their columns."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from stockflow.adapters.db.store import LedgerRow, Writes, _nullable, _texts
from stockflow.domain.effects import LedgerEntry
from stockflow.domain.state import Quantities


def _escaped_always(values: list[str]) -> str:
    body = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return f'{{"{body}"}}' if values else "{}"


@given(st.lists(st.text(alphabet=st.sampled_from('ab"\\,{}@ '), max_size=4), max_size=5))
def test_a_literal_is_the_same_whichever_path_made_it(values: list[str]) -> None:
    assert _texts(values) == _escaped_always(values)


def test_plain_values_are_joined_as_they_are() -> None:
    assert _texts(["A@W1", "B@W2"]) == '{"A@W1","B@W2"}'
    assert _texts(['a"b', "c\\d"]) == '{"a\\"b","c\\\\d"}'
    assert _texts([]) == "{}"


@given(st.lists(st.one_of(st.none(), st.integers(), st.booleans(),
                          st.decimals(allow_nan=False, allow_infinity=False),
                          st.datetimes(timezones=st.just(UTC))), max_size=5))
def test_a_nullable_literal_is_the_same_with_or_without_nulls(values: list[object]) -> None:
    # the fast path (no None) must write each value as the per-value path does
    slow = "{" + ",".join(["NULL" if v is None else f'"{v}"' for v in values]) + "}"
    assert _nullable(values) == slow


class _Copied:
    def __init__(self) -> None:
        self.statement, self.rows = "", []  # type: str, list[tuple[object, ...]]

    def copy(self, statement: str) -> _Copied:
        self.statement = self.statement or statement
        return self

    def __enter__(self) -> _Copied:
        return self

    def __exit__(self, *_: object) -> None:
        return

    def write_row(self, row: tuple[object, ...]) -> None:
        self.rows.append(row)


def test_a_ledger_row_goes_to_the_columns_of_its_fields() -> None:
    # the COPY unpacks a LedgerEntry whole: its columns must follow the fields' order
    before, after = Quantities(1, 2, 3, 4, 5), Quantities(6, 7, 8, 9, 10)
    entry = LedgerEntry("ev-1", "receipt.received", before, after, 11, "receipt:R-1", "note",
                        "actor", datetime(2026, 1, 2, tzinfo=UTC), Decimal("2.50"),
                        Decimal("1.25"), 12, 13)
    cur = _Copied()
    Writes(ledger=[LedgerRow("A@W", entry)]).copy(cur)  # type: ignore[arg-type]
    columns = cur.statement.split("(", 1)[1].split(")", 1)[0].split(", ")
    got = dict(zip(columns, cur.rows[0], strict=True))
    assert got == {
        "key": "A@W", "event_id": "ev-1", "event_type": "receipt.received",
        **{f"{name}_before": v for name, v in before._asdict().items()},
        **{f"{name}_after": v for name, v in after._asdict().items()},
        "version": 11, "reference": "receipt:R-1", "note": "note", "actor": "actor",
        "event_time": entry.time, "value": Decimal("2.50"), "unit_cost": Decimal("1.25"),
        "lost": 12, "remediated": 13}
