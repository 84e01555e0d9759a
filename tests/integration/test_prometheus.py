"""A real Prometheus server (Debian's) scrapes a running processor with stockflow's alert
rules loaded, and a stockflow metric is read back through Prometheus's HTTP API."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from stockflow.adapters.publisher import Publisher
from stockflow.devtools.localenv import LocalServices, free_port
from tests.integration.harness import log_of, make_env, spawn, wait_drained

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def _query(port: int, promql: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        doc = json.loads(resp.read())
    assert doc["status"] == "success", doc
    return list(doc["data"]["result"])


def test_prometheus_scrapes_the_processor(services: LocalServices, unique: str,
                                          tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is required (Debian's prometheus package; scripts/bootstrap)"
    env = make_env(services, unique)
    metrics_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        "  - job_name: stockflow\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n")
    proc = spawn(env, extra={"STOCKFLOW_METRICS_PORT": str(metrics_port)})
    prom = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Publisher(env.settings) as pub:
            for i in range(20):
                pub.publish("receipt.received", {"receipt_id": f"R{i}", "sku": "PROM",
                                                 "warehouse": "W", "quantity": 1})
        wait_drained(env, alive=[proc])
        deadline = time.monotonic() + 90
        applied: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            try:
                applied = _query(prom_port, 'sum(stockflow_events_total{outcome="applied"})')
            except OSError:
                applied = []
            if applied and float(applied[0]["value"][1]) >= 20:  # type: ignore[index]
                break
            time.sleep(1)
        assert applied, "Prometheus never returned stockflow_events_total"
        assert float(applied[0]["value"][1]) == 20  # type: ignore[index]
        up = _query(prom_port, 'up{job="stockflow"}')
        assert [float(r["value"][1]) for r in up] == [1.0]  # type: ignore[index]
        with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/rules",
                                    timeout=5) as resp:
            groups = json.loads(resp.read())["data"]["groups"]
        assert {r["name"] for g in groups for r in g["rules"]} >= {
            "StockflowProcessorDown", "StockflowNoProgress", "StockflowOutputBacklogGrowing"}
    finally:
        prom.send_signal(signal.SIGTERM)
        prom.wait(30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log_of(proc)
