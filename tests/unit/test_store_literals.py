"""The text[] literals the stock store sends: the fast path (no value needs escaping) and
the escaping path give the same literal as escaping every value would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stockflow.adapters.db.store import _texts


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
