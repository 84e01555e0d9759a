"""Nothing blocks a partition. Every class of input that used to wedge the processor (deep
JSON, timestamps at the calendar's edges, integers its columns cannot hold, a write that
Postgres refuses, an unreadable expiry the sweeper kept tripping on) lands on the DLQ with
its reason, or is repaired, and the good events behind it on the same partition and on
others are applied within seconds: also after a restart, by the real processor process."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime

from stockflow.adapters.db.migrate import migrate
from stockflow.contract.topics import TopicKind
from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import Item, _Builder
from tests.integration.harness import (
    Env,
    db_quantities,
    log_of,
    make_env,
    publish,
    read_topic,
    refuse_writes_of,
    spawn,
    wait_drained,
)

KEYS = [f"SKU-{i}@WH-1" for i in range(8)]  # spread over every partition
HOSTILE = "SKU-0@WH-1"
PLACED = {"order_id": "O", "line_id": "1", "sku": "SKU-0", "warehouse": "WH-1", "quantity": 1}


def _hostile(b: _Builder, round_: int) -> list[Item]:
    """One message of each class, all at one key, with the reason each must get."""
    def placed(**over: object) -> dict[str, object]:
        return {**PLACED, "order_id": f"O-{round_}-{b.n}", **over}

    deep = (b'{"specversion":"1.0","id":"deep-%d","source":"s","type":"receipt.received",'
            b'"time":"2026-01-01T00:00:00Z","data":%s}' % (round_, b"[" * 5000 + b"]" * 5000))
    return [
        Item(TopicKind.RECEIPTS, HOSTILE.encode(), deep, reason="invalid_json"),
        # plus the reservation TTL, this time would leave the calendar
        b.item("order.placed", HOSTILE, placed(), at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
               reason="invalid_envelope"),
        b.item("order.placed", HOSTILE, placed(expires_at="9999-12-31T23:00:00-05:00"),
               reason="schema_violation"),
        b.item("order.placed", HOSTILE, placed(expires_at="0001-01-01T00:30:00+01:00"),
               reason="schema_violation"),
        b.item("order.placed", HOSTILE, placed(line_count=2**31), reason="schema_violation"),
        b.item("receipt.received", HOSTILE, {"receipt_id": f"R-refused-{round_}",
                                             "quantity": 1000}, reason="processing_error"),
        # and a few from the generated hostile suite: a lone surrogate, a number no integer
        # column holds, a key that is not UTF-8
        _edited(b.item("order.placed", HOSTILE, placed()), b'"O-', b'"\\ud800',
                "invalid_json"),
        _edited(b.item("order.placed", HOSTILE, placed()), b'"quantity": 1', b'"quantity": 1e400',
                "schema_violation"),
        replace(b.item("order.placed", HOSTILE, placed()), key=b"\xff\xfe@\x00",
                reason="key_mismatch"),
    ]


def _edited(item: Item, old: bytes, new: bytes, reason: str) -> Item:
    assert old in item.value
    return replace(item, value=item.value.replace(old, new, 1), reason=reason)


def _good(b: _Builder, round_: int) -> list[Item]:
    return [b.item("receipt.received", k, {"receipt_id": f"R-{round_}", "quantity": 10})
            for k in KEYS]


def _until_applied(env: Env, want: int, proc: subprocess.Popen[bytes]) -> float:
    """Seconds until every key holds `want` units; the processor must stay up."""
    started = time.monotonic()
    while time.monotonic() - started < 60:
        assert proc.poll() is None, log_of(proc)
        held = db_quantities(env)
        if all(held.get(k, (0,))[0] == want for k in KEYS):
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not applied in 60 s: {db_quantities(env)}\n{log_of(proc)}")


def _assert_dead_lettered(env: Env, items: list[Item]) -> None:
    by_value = {v: h for _, v, h in read_topic(env, TopicKind.DLQ)}
    for item in items:
        headers = by_value[item.value]
        assert headers["stockflow.error.reason"].decode() == item.reason, headers
        assert headers["stockflow.error.message"]
        assert headers["stockflow.error.topic"].decode() == env.topics.name(item.kind)
        assert int(headers["stockflow.error.offset"]) >= 0


def test_hostile_inputs_never_hold_up_the_events_behind_them(services: LocalServices,
                                                            unique: str) -> None:
    env = make_env(services, unique, partitions=3)
    b = _Builder(5, datetime.now(UTC))
    first, second = _hostile(b, 1), _hostile(b, 2)
    refuse_writes_of(env, [i.id for i in first + second if i.reason == "processing_error"
                           and i.id])
    proc = spawn(env)
    publish(env, first + _good(b, 1))  # hostile first: the good events queue behind them
    took = _until_applied(env, 10, proc)
    print(f"good events behind the hostile ones applied after {took:.1f} s")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log_of(proc)
    publish(env, second + _good(b, 2))  # waiting for the restarted member
    proc = spawn(env)
    took = _until_applied(env, 20, proc)
    print(f"after a restart: applied after {took:.1f} s")
    wait_drained(env, alive=[proc])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log_of(proc)
    _assert_dead_lettered(env, first + second)
    assert len(read_topic(env, TopicKind.DLQ)) == len(first + second)


def test_an_unreadable_expiry_stored_before_the_fix_is_repaired_and_swept(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique, partitions=1, migrate_upto=2)
    key = "SKU-X@WH-1"
    with env.db() as conn:  # as an older stockflow stored it: year 0 once in UTC
        conn.execute("INSERT INTO stock (key, sku, warehouse, on_hand, reserved, in_transit,"
                     " damaged, version, reorder_point, safety_stock, severity)"
                     " VALUES (%s, 'SKU-X', 'WH-1', 5, 2, 0, 0, 1, 0, 0, 'ok')", (key,))
        conn.execute("INSERT INTO reservations (key, order_id, line_id, quantity, remaining,"
                     " status, expires_at, partition) VALUES (%s, 'O-old', '1', 2, 2,"
                     " 'pending', '0001-01-01T00:30:00+01:00', 0)", (key,))
    migrate(env.settings.dsn(), env.settings.database_schema)
    b = _Builder(9, datetime.now(UTC))
    proc = spawn(env)
    publish(env, [b.item("receipt.received", key, {"receipt_id": "R1", "quantity": 1})])
    deadline = time.monotonic() + 60
    while db_quantities(env).get(key) != (6, 0, 0, 0):
        assert time.monotonic() < deadline, (db_quantities(env), log_of(proc))
        assert proc.poll() is None, log_of(proc)
        time.sleep(0.3)
    with env.db() as conn:
        status = conn.execute("SELECT status FROM reservations").fetchall()
    assert status == [("expired",)]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log_of(proc)
    assert read_topic(env, TopicKind.DLQ) == []
