"""Output ids are the documented uuid5, so consumers and tests can derive them."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from stockflow.emit import output_id

NAMESPACE = uuid.UUID("5e0c4f10-9b1f-4c55-a3f5-6b0a3c1d2e7f")


@given(st.text(max_size=130), st.sampled_from(["stock.changed", "reservation.accepted"]),
       st.text(max_size=40))
def test_output_id_is_uuid5_of_cause_type_and_line(cause: str, type_: str, line: str) -> None:
    expected = uuid.uuid5(NAMESPACE, f"{cause}\x1f{type_}\x1f{line}")
    assert output_id(cause, type_, line) == str(expected)
