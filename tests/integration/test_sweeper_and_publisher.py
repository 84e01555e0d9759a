"""The expiry sweeper, and the publisher library's validation and atomic orders."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from stockflow.adapters.publisher import Publisher, PublishError
from stockflow.contract.events import Reason
from stockflow.contract.topics import TopicKind
from stockflow.devtools.localenv import LocalServices
from tests.integration.harness import (
    Env,
    db_quantities,
    make_env,
    processor_thread,
    read_topic,
    wait_drained,
)


def test_sweeper_expires_pending_reservations(services: LocalServices, unique: str) -> None:
    env = make_env(services, unique, reservation_ttl=1.0)
    with Publisher(env.settings) as pub, processor_thread(env):
        # The receipt travels on another topic than the orders, so nothing orders it before
        # them: wait until it is applied, or the placements could be judged against no stock.
        pub.publish("receipt.received", {"receipt_id": "R", "sku": "EXP", "warehouse": "W",
                                         "quantity": 50})
        _wait_for(env, lambda q: q[0] == 50)
        now = datetime.now(UTC)
        pub.publish("order.placed", {"order_id": "O-exp", "line_id": "1", "sku": "EXP",
                                     "warehouse": "W", "quantity": 7}, time=now)
        pub.publish("order.placed", {"order_id": "O-keep", "line_id": "1", "sku": "EXP",
                                     "warehouse": "W", "quantity": 3}, time=now)
        pub.publish("order.confirmed", {"order_id": "O-keep"}, key="EXP@W", time=now)
        _wait_for(env, lambda q: q[1] == 3)
        wait_drained(env)
    with env.db() as conn:
        status = {str(o): str(s) for o, s in
                  conn.execute("SELECT order_id, status FROM reservations").fetchall()}
    assert status == {"O-exp": "expired", "O-keep": "confirmed"}
    types = [json.loads(v or b"")["type"] for _, v, _ in read_topic(env, TopicKind.RESERVATIONS)]
    assert "reservation.expired" in types


def _wait_for(env: Env, holds: Callable[[tuple[int, ...]], bool]) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while not holds(db_quantities(env).get("EXP@W", (0, -1))):
        assert datetime.now(UTC) < deadline, db_quantities(env)
        time.sleep(0.05)


def test_publisher_rejects_invalid_events_with_the_dlq_reason(services: LocalServices,
                                                              unique: str) -> None:
    env = make_env(services, unique)
    with Publisher(env.settings) as pub:
        with pytest.raises(PublishError) as bad:
            pub.publish("order.placed", {"order_id": "O", "line_id": "1", "sku": "A",
                                         "warehouse": "W", "quantity": 0})
        assert bad.value.reason is Reason.QUANTITY_OUT_OF_RANGE
        with pytest.raises(PublishError) as unknown:
            pub.publish("order.teleported", {"sku": "A", "warehouse": "W"})
        assert unknown.value.reason is Reason.UNKNOWN_TYPE
        with pytest.raises(PublishError):  # one bad line: nothing of the order is sent
            pub.publish_order("O-bad", [{"sku": "A", "warehouse": "W", "quantity": 1},
                                        {"sku": "A", "warehouse": "W", "quantity": -1}])
        ids = pub.publish_order("O-1", [{"sku": "A", "warehouse": "W", "quantity": 1},
                                        {"sku": "B", "warehouse": "W", "quantity": 2},
                                        {"sku": "C", "warehouse": "W", "quantity": 3}])
    assert len(ids) == 3
    seen = [json.loads(v or b"") for _, v, _ in read_topic(env, TopicKind.ORDERS)]
    assert sorted(d["id"] for d in seen) == sorted(ids)
    assert {d["data"]["line_count"] for d in seen} == {3}
    assert all(d["data"]["order_id"] == "O-1" for d in seen)
    # transaction markers follow the order's lines: the processor must still drain fully
    with processor_thread(env):
        wait_drained(env)
    with env.db() as conn:
        lines = conn.execute("SELECT count(*) FROM reservations WHERE order_id = 'O-1'")
        assert lines.fetchone() == (3,)
