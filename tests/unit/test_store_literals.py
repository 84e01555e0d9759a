"""The literals the stock store sends: the fast paths (no value needs escaping, no NULL)
give what the per-value paths give, and a ledger row's values land in their columns."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from stockflow.adapters.db.literals import nullable, nullable_texts, texts
from stockflow.adapters.db.store import LedgerRow, Writes
from stockflow.domain.effects import LedgerEntry
from stockflow.domain.state import Quantities


def _escaped_always(values: list[str]) -> str:
    body = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return f'{{"{body}"}}' if values else "{}"


@given(st.lists(st.text(alphabet=st.sampled_from('ab"\\,{}@ '), max_size=4), max_size=5))
def test_a_literal_is_the_same_whichever_path_made_it(values: list[str]) -> None:
    assert texts(values) == _escaped_always(values)


def test_plain_values_are_joined_as_they_are() -> None:
    assert texts(["A@W1", "B@W2"]) == '{"A@W1","B@W2"}'
    assert texts(['a"b', "c\\d"]) == '{"a\\"b","c\\\\d"}'
    assert texts([]) == "{}"


@given(st.lists(st.one_of(st.none(), st.integers(), st.booleans(),
                          st.decimals(allow_nan=False, allow_infinity=False),
                          st.datetimes(timezones=st.just(UTC))), max_size=5))
def test_a_nullable_literal_is_the_same_with_or_without_nulls(values: list[object]) -> None:
    # the fast path (no None) must write each value as the per-value path does
    slow = "{" + ",".join(["NULL" if v is None else f'"{v}"' for v in values]) + "}"
    assert nullable(values) == slow


def test_a_ledger_row_goes_to_the_columns_of_its_fields() -> None:
    # the columns are taken from a LedgerEntry whole: they must follow the fields' order
    before, after = Quantities(1, 2, 3, 4, 5), Quantities(6, 7, 8, 9, 10)
    entry = LedgerEntry("ev-1", "receipt.received", before, after, 11, "receipt:R-1", None,
                        'a "quoted" actor', datetime(2026, 1, 2, tzinfo=UTC), Decimal("2.50"),
                        Decimal("1.25"), 12, 13)
    statement, params = Writes(ledger=[LedgerRow("A@W", entry)]).steps()[0]
    columns = statement.split("(", 1)[1].split(")", 1)[0].split(", ")
    got = dict(zip(columns, params, strict=True))
    assert got == {
        "key": '{"A@W"}', "event_id": '{"ev-1"}', "event_type": '{"receipt.received"}',
        **{f"{name}_before": f"{{{v}}}" for name, v in before._asdict().items()},
        **{f"{name}_after": f"{{{v}}}" for name, v in after._asdict().items()},
        "version": "{11}", "reference": '{"receipt:R-1"}', "note": "{NULL}",
        "actor": '{"a \\"quoted\\" actor"}', "event_time": '{"2026-01-02 00:00:00+00:00"}',
        "value": '{"2.50"}', "unit_cost": '{"1.25"}', "lost": '{"12"}', "remediated": '{"13"}'}


@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from('ab"\\,{}N '),
                                              max_size=4)), max_size=5))
def test_a_nullable_text_literal_escapes_as_a_text_literal_does(values: list[str | None]
                                                                 ) -> None:
    one_by_one = "{" + ",".join(["NULL" if v is None else texts([v])[1:-1]
                                 for v in values]) + "}"
    assert nullable_texts(values) == one_by_one
