"""A caller's request as events: ids derived from the Idempotency-Key (the same for a
retry, as in every earlier release), the caller as source whatever the body says."""

from __future__ import annotations

import uuid

from stockflow.usecases.requests import Requester, completed, events_of


def test_a_retry_carries_the_same_ids_as_every_release_derived_them() -> None:
    retry = Requester("k1", "wms", "order-77")
    first, again = events_of(retry, [("receipt.received", {"sku": "A"})] * 2), \
        events_of(retry, [("receipt.received", {"sku": "A"})] * 2)
    assert [d["id"] for d in first] == [d["id"] for d in again]
    # the namespace and the text hashed are part of the API's promise across upgrades
    namespace = uuid.UUID("6f1c3a52-6d0e-4c8e-9d61-2b7f0c1e5a90")
    assert first[1]["id"] == str(uuid.uuid5(namespace, "k1\norder-77\n1"))
    assert len({d["id"] for d in first}) == 2
    fresh = Requester("k1", "wms", None)
    assert events_of(fresh, [("x", {})])[0]["id"] != events_of(fresh, [("x", {})])[0]["id"]


def test_the_caller_is_the_source_and_empty_fields_are_left_out() -> None:
    [doc] = events_of(Requester("k1", "wms", None), [("receipt.received",
                                                      {"sku": "A", "note": None})])
    assert doc["source"] == "api-key:wms" and doc["data"] == {"sku": "A"}
    [sent] = completed(Requester("k1", "wms", "r"), [{"type": "x", "source": "me", "data": {}}])
    assert sent["source"] == "api-key:wms" and sent["id"] and sent["time"]
    [kept] = completed(Requester("k1", "wms", None), [{"type": "x", "id": "mine"}])
    assert kept["id"] == "mine"
