"""The `stockflow` command line, driven as a user would, against the real services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from stockflow.adapters.kafka import admin
from stockflow.adapters.settings import Settings
from stockflow.contract.topics import Topics
from stockflow.devtools.localenv import LocalServices, free_port
from tests.integration.harness import make_env, wait_drained


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stockflow", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout, check=False)


def base_env(services: LocalServices, unique: str) -> dict[str, str]:
    return {"STOCKFLOW_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
            "STOCKFLOW_DATABASE_URL": services.database_url,
            "STOCKFLOW_TOPIC_PREFIX": f"c{unique}.", "STOCKFLOW_DATABASE_SCHEMA": f"c{unique}",
            "STOCKFLOW_GROUP_ID": f"c{unique}", "STOCKFLOW_SESSION_TIMEOUT_MS": "6000"}


def test_topics_and_migrations_are_idempotent(services: LocalServices, unique: str) -> None:
    env = base_env(services, unique)
    first = cli(env, "topics", "create", "--partitions", "2")
    assert first.returncode == 0, first.stderr
    # with inventory.reorder and the order coordinator's two topics
    assert first.stdout.count("created") == len(Topics().all) == 12
    again = cli(env, "topics", "create", "--partitions", "2")
    assert again.stdout.count("exists") == 12
    m1, m2 = cli(env, "db", "migrate"), cli(env, "db", "migrate")
    assert m1.returncode == m2.returncode == 0
    assert "applied 0001_stock.sql" in m1.stdout
    assert "up to date" in m2.stdout


def test_processor_refuses_inputs_that_are_not_copartitioned(services: LocalServices,
                                                             unique: str) -> None:
    env = base_env(services, unique)
    topics = Topics(env["STOCKFLOW_TOPIC_PREFIX"])
    client = admin(Settings(kafka_bootstrap=services.kafka_bootstrap))
    futures = client.create_topics([NewTopic(t, 3 if i else 2, 1)
                                    for i, t in enumerate(topics.inputs)])
    for fut in futures.values():
        fut.result(30)
    assert cli(env, "db", "migrate").returncode == 0
    run = cli(env, "process", timeout=60)
    assert run.returncode == 2
    assert "co-partitioned" in run.stderr
    assert f"{topics.inputs[0]}=2" in run.stderr


def test_unmigrated_database_is_refused_clearly(services: LocalServices, unique: str) -> None:
    env = base_env(services, unique)
    assert cli(env, "topics", "create", "--partitions", "1").returncode == 0
    run = cli(env, "process", timeout=60)
    assert run.returncode == 2
    assert "stockflow db migrate" in run.stderr


def test_publish_process_stock_metrics_and_sigterm(services: LocalServices, unique: str,
                                                  tmp_path: Path) -> None:
    env = make_env(services, unique)
    vars_ = {**dict(env.env_vars.items()), "STOCKFLOW_METRICS_PORT": str(free_port())}
    lines = [
        {"type": "receipt.received", "data": {"receipt_id": "R1", "sku": "CLI-1",
                                              "warehouse": "WH", "quantity": 40}},
        {"specversion": "1.0", "id": "full-envelope-1", "source": "test", "type": "order.placed",
         "time": datetime.now(UTC).isoformat(), "data": {"order_id": "O1", "line_id": "1",
                                                 "sku": "CLI-1", "warehouse": "WH", "quantity": 5,
                                                 # applied before or after the receipt (two
                                                 # topics: either may come first), it
                                                 # reserves 5 of the 40
                                                 "allow_backorder": True}},
        {"type": "stock.damaged", "data": {"damage_id": "D1", "sku": "CLI-1", "warehouse": "WH",
                                           "quantity": 0}},
    ]
    src = tmp_path / "events.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    pub = cli(vars_, "publish", str(src))
    assert pub.returncode == 1  # two lines rejected, and said so
    assert "published 2 events, 2 rejected" in pub.stderr
    assert "quantity_out_of_range" in pub.stderr
    assert "[" in pub.stderr  # the progress bar

    proc = subprocess.Popen([sys.executable, "-m", "stockflow", "process"],
                            env={**os.environ, **vars_}, stderr=subprocess.PIPE, text=True)
    try:
        wait_drained(env)
        port = vars_["STOCKFLOW_METRICS_PORT"]
        metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert 'stockflow_events_total{outcome="applied",topic="receipts"' in metrics
        assert "stockflow_batch_duration_seconds_bucket" in metrics
        assert "stockflow_end_to_end_latency_seconds_count" in metrics
        assert _status(f"http://127.0.0.1:{port}/healthz") == 200
        assert _status(f"http://127.0.0.1:{port}/readyz") == 200
        assert _status(f"http://127.0.0.1:{port}/nope") == 404
        shown = cli(vars_, "stock", "CLI-1@WH", "--json")
        assert shown.returncode == 0, shown.stderr
        doc = json.loads(shown.stdout)
        assert (doc["on_hand"], doc["reserved"], doc["available"]) == (40, 5, 35)
        assert doc["active_reservations"] == 1
        human = cli(vars_, "stock", "CLI-1@WH")
        assert "on_hand" in human.stdout
        assert cli(vars_, "stock", "NOPE@WH").returncode == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def _get(url: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
                return str(resp.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
