"""The Kubernetes manifests validate against Kubernetes' schemas, strictly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
VERSION = "1.30.0"


def manifests() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, doc) for p in sorted(K8S.glob("*.yaml"))
            for doc in yaml.safe_load_all(p.read_text()) if doc]


@pytest.mark.parametrize(("name", "doc"), [m for m in manifests()
                                           if m[1]["apiVersion"] != "keda.sh/v1alpha1"])
def test_manifest_matches_the_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, VERSION, strict=True)


def _by_kind(component: str = "processor") -> dict[str, dict[str, Any]]:
    """The manifests of one component, the init job and the shared ones, by kind."""
    return {doc["kind"]: doc for _, doc in manifests()
            if doc["metadata"].get("labels", {}).get("app.kubernetes.io/component",
                                                     component) in (component, "init")}


@pytest.mark.parametrize("component", ["processor", "coordinator", "relay", "api"])
def test_services_have_probes_resources_and_a_disruption_budget(component: str) -> None:
    kinds = _by_kind(component)
    spec = kinds["Deployment"]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["args"] == [{"processor": "process", "coordinator": "coordinate"}.get(
        component, component)]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    selector = kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert kinds["Service"]["spec"]["selector"] == selector
    port = kinds["Service"]["metadata"]["annotations"]["prometheus.io/port"]
    setting = {"processor": "STOCKFLOW_METRICS_PORT", "relay": "STOCKFLOW_RELAY_METRICS_PORT",
               "coordinator": "STOCKFLOW_COORDINATOR_METRICS_PORT",
               "api": "STOCKFLOW_API_PORT"}[component]
    assert kinds["ConfigMap"]["data"][setting] == port


def test_relay_reads_its_secret_key_from_a_secret() -> None:
    spec = _by_kind("relay")["Deployment"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert "secretKeyRef" in env["STOCKFLOW_SECRET_KEY"]["valueFrom"]


def test_keda_scales_on_lag_capped_at_the_partition_count() -> None:
    kinds = _by_kind()
    scaled = kinds["ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == kinds["Deployment"]["metadata"]["name"]
    init = " ".join(kinds["Job"]["spec"]["template"]["spec"]["containers"][0]["command"])
    match = re.search(r"--partitions (\d+)", init)
    assert match
    assert scaled["spec"]["maxReplicaCount"] == int(match[1])
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == kinds["ConfigMap"]["data"]["STOCKFLOW_GROUP_ID"]
