"""The Grafana dashboard is valid and queries only metrics the processor, the order
coordinator and the webhook relay export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from stockflow.adapters.kafka_metrics import KafkaMetrics
from stockflow.adapters.metrics import PrometheusObserver
from stockflow.adapters.order_metrics import OrderMetrics
from stockflow.adapters.relay_metrics import RelayMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "stockflow.json"
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"],
            "gauge": [""], "info": ["_info"]}


def exported() -> set[str]:
    registry = CollectorRegistry()
    PrometheusObserver(registry)
    RelayMetrics(registry)
    OrderMetrics(registry)  # the order coordinator's
    KafkaMetrics(registry)  # the processor's, the relay's and the API's
    return {fam.name + s for fam in registry.collect() for s in SUFFIXES.get(fam.type, [""])}


def test_dashboard_queries_only_exported_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs
    used = {m for e in exprs for m in re.findall(r"\bstockflow_[a-z_]+", e)}
    assert used, "no stockflow metric queried"
    assert used <= exported(), f"not exported: {sorted(used - exported())}"


def test_dashboard_covers_what_ops_watch() -> None:
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in ("throughput", "latency", "lag", "batch size", "batch duration", "postgres",
                  "dlq", "oversell", "low-stock", "backlog", "webhook attempts",
                  "webhook queue", "webhook endpoints", "webhook attempt latency"):
        assert topic in titles, topic
