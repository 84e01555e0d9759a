"""The warehouse registry on the session's Postgres: the invariants Postgres holds whoever
writes (checks, an append-only history, no deletion), what the order coordinator reads, and
a history without gaps under concurrent changes."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from stockflow.adapters.db import store
from stockflow.adapters.db import warehouses as registry
from stockflow.devtools.localenv import LocalServices
from stockflow.domain.warehouses import Location, Patch, Warehouse
from tests.integration.harness import make_env


def test_postgres_holds_the_registry_invariants_whoever_writes(services: LocalServices,
                                                                unique: str) -> None:
    env = make_env(services, unique)
    with env.db() as conn:
        for values in ("('X', 'x', 1, true, 5, NULL)",  # half a location
                       "('X', 'x', 1, true, 90.5, 0)", "('X', 'x', 1, true, 0, -180.5)",
                       "('X', 'x', 1, true, 'NaN', 0)", "('X y', 'x', 1, true, NULL, NULL)",
                       "('X', '', 1, true, NULL, NULL)", "('X', e'a\\nb', 1, true, NULL, NULL)",
                       "('X', 'x', -1, true, NULL, NULL)"):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute("INSERT INTO warehouses (code, name, priority, active, lat, lon)"
                             f" VALUES {values}")
        registry.add(conn, Warehouse("WH-1", "One", 2, location=Location(1.5, 2.5)),
                     actor="test")
        registry.add(conn, Warehouse("WH-0", "Zero", 2), actor="test")
        registry.add(conn, Warehouse("WH-9", "Nine", 1, active=False), actor="test")
        for statement in ("UPDATE warehouse_changes SET actor = 'someone else'",
                          "DELETE FROM warehouse_changes", "TRUNCATE warehouse_changes"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("DELETE FROM warehouses WHERE code = 'WH-1'")
        # what the order coordinator reads: active ones, by priority then code
        assert [w.code for w in registry.active(conn)] == ["WH-0", "WH-1"]
        assert registry.active(conn)[1].location == Location(1.5, 2.5)


def test_concurrent_changes_leave_a_history_without_gaps(services: LocalServices,
                                                          unique: str) -> None:
    """Each change's old values are exactly the previous change's new ones: a change
    locks the warehouse, so one made meanwhile waits instead of being overwritten
    unrecorded."""
    env = make_env(services, unique)
    with env.db() as conn:
        registry.add(conn, Warehouse("WH-1", "n0"), actor="test")

    def change(worker: int) -> None:
        with store.connect(env.settings.dsn(), env.settings.database_schema,
                           autocommit=True) as own:
            for n in range(25):
                registry.update(own, "WH-1", Patch(name=f"n{(worker + n) % 3}",
                                                   priority=(worker * 7 + n) % 5),
                                actor=f"worker-{worker}")

    workers = [threading.Thread(target=change, args=(w,)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    with env.db() as conn:
        history = registry.history(conn, "WH-1")
        now = registry.listed(conn)[0]
    seen: dict[str, Any] = {}
    for h in history:
        for field, values in h.changes.items():
            assert seen.get(field) == values["old"] != values["new"], (h, seen)
            seen[field] = values["new"]
    assert (seen["name"], seen["priority"]) == (now.warehouse.name, now.warehouse.priority)
    assert history[-1].changed_at == now.updated_at
    assert [h.changed_at for h in history] == sorted(h.changed_at for h in history)
