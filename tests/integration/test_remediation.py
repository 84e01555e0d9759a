"""Oversell remediation on the real processor: a count below the pending reservations
releases the newest pending ones (loaded from Postgres by a processor that never saw them
placed), and with the policy `none` nothing is released."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from stockflow.contract.topics import TopicKind
from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import Item
from tests.factories import envelope
from tests.integration.harness import (
    db_quantities,
    make_env,
    processor_thread,
    publish,
    read_topic,
    wait_drained,
)

KEY = "REM-1@W"


def _item(kind: TopicKind, type_: str, id_: str, **data: Any) -> Item:
    body = {"sku": "REM-1", "warehouse": "W", **data}
    # now, not the factories' T0: the sweeper must not expire the pending lines meanwhile
    return Item(kind, KEY.encode(), envelope(type_, body, id_=id_, at=datetime.now(UTC)))


def _placed(order: str, quantity: int, **extra: Any) -> Item:
    return _item(TopicKind.ORDERS, "order.placed", f"place-{order}", order_id=order,
                 line_id="1", quantity=quantity, **extra)


@pytest.mark.parametrize("policy", ["release_newest_pending", "none"])
def test_a_count_below_the_reservations_releases_the_newest_pending_ones(
    services: LocalServices, unique: str, policy: str,
) -> None:
    env = make_env(services, unique, oversell_remediation=policy)
    with processor_thread(env):
        publish(env, [_item(TopicKind.RECEIPTS, "receipt.received", "r0", receipt_id="R0",
                            quantity=20)])
        wait_drained(env)
        # one topic, one partition: applied in this order
        publish(env, [_placed("OLD", 4), _placed("CONF", 5), _placed("MID", 3),
                      _placed("NEW", 2), _placed("BACK", 8, allow_backorder=True),
                      _item(TopicKind.ORDERS, "order.confirmed", "conf", order_id="CONF")])
        wait_drained(env)
    assert db_quantities(env)[KEY] == (20, 22, 0, 0)  # BACK is backordered: available -2
    # a new processor: the pending lines come from Postgres, not from what it applied
    with processor_thread(env):
        publish(env, [_item(TopicKind.ADJUSTMENTS, "stock.counted", "count", count_id="C1",
                            on_hand=15)])
        wait_drained(env)
    docs = [json.loads(v or b"") for _, v, _ in read_topic(env, TopicKind.RESERVATIONS)]
    released = [d["data"] for d in docs if d["type"] == "reservation.released"]
    with env.db() as conn:
        status = {str(o): str(s) for o, s in conn.execute(
            "SELECT order_id, status FROM reservations").fetchall()}
        ledger = conn.execute("SELECT reserved_before, reserved_after, remediated FROM ledger"
                              " WHERE event_id = 'count'").fetchone()
    if policy == "none":
        assert released == []
        assert db_quantities(env)[KEY] == (15, 22, 0, 0)
        assert status == {"OLD": "pending", "CONF": "confirmed", "MID": "pending",
                          "NEW": "pending", "BACK": "pending"}
        assert ledger == (22, 22, None)
        return
    # available goes from -2 to 15 - 22 = -7: NEW (2) then MID (3) bring it back to -2;
    # BACK (backordered) and CONF (confirmed) are never released, OLD is not needed
    assert [(d["order_id"], d["quantity"], d["reason"]) for d in released] == [
        ("NEW", 2, "oversell_remediation"), ("MID", 3, "oversell_remediation")]
    assert all(d["cause"] == {"event_id": "count", "type": "stock.counted"}
               for d in released)
    assert status == {"OLD": "pending", "CONF": "confirmed", "MID": "released",
                      "NEW": "released", "BACK": "pending"}
    assert db_quantities(env)[KEY] == (15, 17, 0, 0)
    assert ledger == (22, 17, 5)
    last = [json.loads(v or b"")["data"] for _, v, _ in
            read_topic(env, TopicKind.STOCK_CHANGED)][-1]
    assert (last["reserved"], last["available"], last["delta"]["reserved"]) == (17, -2, -5)
