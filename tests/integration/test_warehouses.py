"""The warehouse registry on the session's Postgres, through the real command line and a
real `stockflow api` server: registering, changing, deactivating and activating again,
each change in the history with who made it and when, the refusals (401, 403, 404, 409,
422; a location with one coordinate or off the globe), and the invariants Postgres holds
whoever writes (checks, an append-only history, no deletion, a gapless history under
concurrent changes)."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from stockflow.adapters.db import store
from stockflow.adapters.db import warehouses as registry
from stockflow.devtools.localenv import LocalServices
from stockflow.domain.warehouses import Location, Patch, Warehouse
from tests.integration.harness import Env, make_env
from tests.integration.test_api import api_server, bearer, cli, new_key


def _refused(env: Env, *args: str) -> str:
    """stderr of a `stockflow` command that must refuse (exit 2)."""
    done = subprocess.run([sys.executable, "-m", "stockflow", *args],
                          env={**os.environ, **env.env_vars}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2, (done.stdout, done.stderr)
    return done.stderr


def _json(env: Env, *args: str) -> Any:
    return json.loads(cli(env, "warehouses", *args, "--json"))


def _recent(at: str, since: datetime) -> bool:
    return since <= datetime.fromisoformat(at) <= datetime.now(UTC)


def test_the_command_line_keeps_the_registry_and_its_history(services: LocalServices,
                                                               unique: str) -> None:
    env = make_env(services, unique)
    began, me = datetime.now(UTC), f"cli:{getpass.getuser()}"
    assert "added WH-B (Cape Town)" in cli(env, "warehouses", "add", "WH-B", "--name",
                                           "Cape Town", "--priority", "20",
                                           "--location=-33.92,18.42")
    cli(env, "warehouses", "add", "WH-A", "--name", "Berlin [main]", "--priority", "20",
        "--actor", "alice")
    assert "registered already" in _refused(env, "warehouses", "add", "WH-A", "--name", "x")
    assert "latitude" in _refused(env, "warehouses", "add", "WH-C", "--name", "x",
                                  "--location", "91,0")
    assert "LAT,LON" in _refused(env, "warehouses", "add", "WH-C", "--name", "x",
                                 "--location", "52.5")
    assert "no warehouse 'WH-Z'" in _refused(env, "warehouses", "deactivate", "WH-Z")
    assert "priority 20 -> 5; location -33.92,18.42 -> none" in cli(
        env, "warehouses", "set", "WH-B", "--priority", "5", "--no-location", "--actor", "bob")
    cli(env, "warehouses", "deactivate", "WH-A")
    assert [w["code"] for w in _json(env, "list")] == ["WH-B"]  # the active ones
    listed = _json(env, "list", "--all")
    assert [(w["code"], w["priority"], w["active"]) for w in listed] == [
        ("WH-B", 5, True), ("WH-A", 20, False)]  # by priority, then code
    assert listed[0]["location"] is None and listed[1]["name"] == "Berlin [main]"
    assert "nothing to change" in cli(env, "warehouses", "deactivate", "WH-A")
    cli(env, "warehouses", "activate", "WH-A", "--actor", "carol")

    history = _json(env, "history")
    assert [(h["code"], h["actor"], h["action"], h["changes"]) for h in history] == [
        ("WH-B", me, "added", {"name": {"old": None, "new": "Cape Town"},
                               "priority": {"old": None, "new": 20},
                               "active": {"old": None, "new": True},
                               "location": {"old": None, "new": {"lat": -33.92, "lon": 18.42}}}),
        ("WH-A", "alice", "added", {"name": {"old": None, "new": "Berlin [main]"},
                                    "priority": {"old": None, "new": 20},
                                    "active": {"old": None, "new": True}}),
        ("WH-B", "bob", "changed", {"priority": {"old": 20, "new": 5},
                                    "location": {"old": {"lat": -33.92, "lon": 18.42},
                                                 "new": None}}),
        ("WH-A", me, "changed", {"active": {"old": True, "new": False}}),
        ("WH-A", "carol", "changed", {"active": {"old": False, "new": True}}),
    ]  # the refused and the empty changes left nothing
    assert all(_recent(h["changed_at"], began) for h in history)
    assert [h["id"] for h in history] == sorted(h["id"] for h in history)
    table = cli(env, "warehouses", "history", "WH-A")
    assert "alice" in table and "carol" in table and "Cape Town" not in table


def test_the_api_registers_and_changes_warehouses_for_admins_only(services: LocalServices,
                                                                   unique: str) -> None:
    env = make_env(services, unique)
    _, reader = new_key(env, "storefront", "read")
    _, writer = new_key(env, "wms", "write")
    _, admin = new_key(env, "ops", "admin")
    began = datetime.now(UTC)
    body = {"code": "WH-N", "name": "North", "priority": 10,
            "location": {"lat": 59.33, "lon": 18.07}}
    with api_server(env) as api:
        # the caller first: no key, 401; a key without the scope, 403; whatever the body
        assert api.get("/v1/warehouses").status_code == 401
        assert api.post("/v1/warehouses", content=b"{not json").status_code == 401
        assert api.post("/v1/warehouses", json=body, headers=bearer(reader)).status_code == 403
        assert api.patch("/v1/warehouses/WH-N", json={"active": False},
                         headers=bearer(writer)).status_code == 403
        assert api.get("/v1/warehouses").status_code == 401

        made = api.post("/v1/warehouses", json=body, headers=bearer(admin))
        assert made.status_code == 201, made.text
        assert made.headers["location"] == "/v1/warehouses/WH-N"
        assert {k: made.json()[k] for k in body} == body
        assert made.json()["active"] is True
        again = api.post("/v1/warehouses", json={**body, "name": "Other"}, headers=bearer(admin))
        assert again.status_code == 409 and "registered already" in again.json()["detail"]

        for bad in ({**body, "code": "WH-2", "location": {"lat": 59.33}},  # one coordinate
                    {**body, "code": "WH-2", "location": {"lat": 91, "lon": 0}},
                    {**body, "code": "WH-2", "location": {"lat": 0, "lon": 180.01}},
                    {**body, "code": "WH 2"}, {**body, "code": "WH-2", "name": ""},
                    {**body, "code": "WH-2", "priority": -1}, {**body, "code": "WH-2", "x": 1}):
            refused = api.post("/v1/warehouses", json=bad, headers=bearer(admin))
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["errors"], refused.text
        for bad_patch in ({"location": {"lon": 1}}, {"location": {"lat": -90.5, "lon": 0}},
                          {"name": None}, {"code": "WH-3"}):
            refused = api.patch("/v1/warehouses/WH-N", json=bad_patch, headers=bearer(admin))
            assert refused.status_code == 422, (bad_patch, refused.text)

        for path in ("/v1/warehouses/WH-2", "/v1/warehouses/WH-2/history"):
            assert api.get(path, headers=bearer(reader)).status_code == 404
        assert api.patch("/v1/warehouses/WH-2", json={"priority": 1},
                         headers=bearer(admin)).status_code == 404

        changed = api.patch("/v1/warehouses/WH-N", json={"priority": 3, "location": None},
                            headers=bearer(admin))
        assert changed.status_code == 200, changed.text
        assert (changed.json()["priority"], changed.json()["location"],
                changed.json()["name"]) == (3, None, "North")  # the rest stays
        same = api.patch("/v1/warehouses/WH-N", json={"priority": 3}, headers=bearer(admin))
        assert same.json() == changed.json()  # nothing changed, nothing recorded
        assert api.patch("/v1/warehouses/WH-N", json={},
                         headers=bearer(admin)).json() == changed.json()
        off = api.patch("/v1/warehouses/WH-N", json={"active": False}, headers=bearer(admin))
        assert off.json()["active"] is False

        assert api.get("/v1/warehouses", headers=bearer(reader)).json() == {"items": []}
        every = api.get("/v1/warehouses?all=true", headers=bearer(reader)).json()["items"]
        assert every == [off.json()]
        assert api.get("/v1/warehouses/WH-N", headers=bearer(reader)).json() == off.json()

        # the command line sees what the API did, and the API what the command line did
        cli(env, "warehouses", "activate", "WH-N", "--actor", "night-shift")
        latest = api.get("/v1/warehouses/WH-N", headers=bearer(reader)).json()
        assert latest["active"] is True
        history = api.get("/v1/warehouses/WH-N/history", headers=bearer(reader))
        assert history.status_code == 200, history.text
        items = history.json()["items"]
    assert [(h["actor"], h["action"], h["changes"]) for h in items] == [
        ("api-key:ops", "added", {"name": {"old": None, "new": "North"},
                                  "priority": {"old": None, "new": 10},
                                  "active": {"old": None, "new": True},
                                  "location": {"old": None, "new": body["location"]}}),
        ("api-key:ops", "changed", {"priority": {"old": 10, "new": 3},
                                    "location": {"old": body["location"], "new": None}}),
        ("api-key:ops", "changed", {"active": {"old": True, "new": False}}),
        ("night-shift", "changed", {"active": {"old": False, "new": True}}),
    ]
    assert all(_recent(h["changed_at"], began) for h in items)
    assert datetime.fromisoformat(items[-1]["changed_at"]) == datetime.fromisoformat(
        latest["updated_at"])
    assert [h["id"] for h in _json(env, "history", "WH-N")] == [h["id"] for h in items]


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
