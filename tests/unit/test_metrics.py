"""The batch-fed histogram exposes what the client's own Histogram would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stockflow.adapters.metrics import BatchHistogram

BUCKETS = (0.01, 0.1, 1.0)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    return {(s.name, s.labels.get("le", "")): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples
            if not s.name.endswith("_created")}


def test_batch_histogram_matches_the_client_histogram() -> None:
    values = [0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 3.0, 0.2]
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    ours.register(h := BatchHistogram("lat_seconds", "latency", BUCKETS))
    h.observe_all(values[:3])
    h.observe_all([])
    h.observe_all(values[3:])
    ref = Histogram("lat_seconds", "latency", buckets=BUCKETS, registry=theirs)
    for v in values:
        ref.observe(v)
    got, want = _samples(ours), _samples(theirs)
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value), name
    assert got[("lat_seconds_bucket", "0.1")] == 4  # le is inclusive
