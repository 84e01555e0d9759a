"""The main job with simulated traffic: steady processing, the API and the relay beside it
(a demo read token answers), then Ctrl-C exits 0 with a summary whose figures are what
Postgres holds. It runs on its embedded default while other processes hold the usual ports
(9108, 8080, 9109, 9110): it takes free ones and says where everything is."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg

from stockflow.devtools.localenv import LocalServices

# the defaults of metrics, the API, the relay and the coordinator
_USUAL_PORTS = (9108, 8080, 9109, 9110)


@contextlib.contextmanager
def _held(ports: tuple[int, ...]) -> Iterator[None]:
    """Listen on `ports`, as other services would (one another process holds is held)."""
    with contextlib.ExitStack() as stack:
        for port in ports:
            sock = stack.enter_context(socket.socket())
            with contextlib.suppress(OSError):
                sock.bind(("0.0.0.0", port))  # noqa: S104 - as a service would
                sock.listen()
        yield


def test_up_with_simulation_stops_on_ctrl_c_with_a_true_summary(services: LocalServices,
                                                              unique: str) -> None:
    schema = f"m{unique}"
    env = {**os.environ, "STOCKFLOW_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
           "STOCKFLOW_DATABASE_URL": services.database_url,
           "STOCKFLOW_TOPIC_PREFIX": f"m{unique}.", "STOCKFLOW_DATABASE_SCHEMA": schema,
           "STOCKFLOW_GROUP_ID": f"m{unique}", "STOCKFLOW_LOG_LEVEL": "WARNING"}
    for port in ("METRICS_PORT", "API_PORT", "RELAY_METRICS_PORT",
                 "COORDINATOR_METRICS_PORT"):  # the embedded default
        env.pop(f"STOCKFLOW_{port}", None)
    with _held(_USUAL_PORTS):
        job = subprocess.Popen([sys.executable, "-m", "stockflow", "up", "--simulate",
                                "--rate", "200", "--skus", "50", "--refresh", "1", "--json"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        assert job.stdout is not None
        banner = ""
        while "read token" not in banner:  # the first line of the live view
            banner = job.stdout.readline()
            assert banner, job.communicate(timeout=60)
        url, token = re.findall(r"API (\S+)/docs  read token (\S+)", banner)[0]
        lines = job.stdout.readline() + job.stdout.readline() + job.stdout.readline()
        time.sleep(6)  # the API answers while the simulation runs
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api:
            page = api.get("/v1/stock", params={"limit": 5})
            assert page.status_code == 200 and len(page.json()["items"]) == 5, page.text
            assert api.get("/v1/alerts").status_code == 200
            assert api.post("/v1/receipts", json={}).status_code == 403  # a read token
        processor = re.findall(r"processor metrics (\S+)", lines)
        relay = re.findall(r"relay metrics (\S+)", lines)
        coordinator = re.findall(r"coordinator metrics (\S+)", lines)
        assert relay and "stockflow_webhook" in httpx.get(relay[0]).text
        assert processor and "stockflow_events_total" in httpx.get(processor[0]).text
        assert coordinator and "stockflow_batch" in httpx.get(coordinator[0]).text
        taken = {int(u.rsplit(":", 1)[1].split("/")[0])
                 for u in (url, processor[0], relay[0], coordinator[0])}
        assert len(taken) == 4 and not taken & set(_USUAL_PORTS), (url, lines)
        env_file = Path(re.findall(r"set -a; \. (\S+)", lines)[0])
        assert env_file.stat().st_mode & 0o077 == 0  # the run's secret key: the owner's only
        time.sleep(4)
        job.send_signal(signal.SIGINT)
        out, err = job.communicate(timeout=120)
    assert job.returncode == 0, err[-3000:]
    assert not env_file.exists()  # the secret key is not left behind once the run is over
    log = env_file.parent / "companions.log"  # kept only when the API or relay said something
    assert not env_file.parent.exists() or log.stat().st_size > 0
    # librdkafka speaks through Python logging (JSON), never in its own format on stderr
    assert [line for line in err.splitlines() if line.startswith("%")] == []
    views = [line for line in out.splitlines() if line.startswith("stockflow  published")]
    assert len(views) >= 3, out  # the live view kept refreshing
    assert "events/s: " in out
    # the latency the view shows is the last minute's percentiles, not a bucket's bound
    latency = re.compile(r"latency \(last 60 s\) p50 [\d,]+ ms  p95 [\d,]+ ms  p99 [\d,]+ ms")
    assert any(latency.search(line) for line in views[1:]), views
    assert "<=" not in out
    summary = json.loads(out.splitlines()[-1])  # --json: the last line, for programs
    with psycopg.connect(services.database_url) as conn:
        conn.execute(f"SET search_path TO {schema}")
        processed = conn.execute("SELECT count(*) FROM processed_events").fetchone()
        stock = conn.execute("SELECT count(*), sum(on_hand), sum(reserved) FROM stock").fetchone()
    assert summary["published"] > 100
    assert processed == (summary["processed"],)
    assert summary["processed"] >= summary["applied"] > 0
    assert stock == (summary["keys"], summary["on_hand"], summary["reserved"])
    assert summary["keys"] == 150  # every SKU in all three warehouses got opening stock
