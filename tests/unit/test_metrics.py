"""The batch-fed histogram exposes what the client's own Histogram would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stockflow.adapters.metrics import BatchHistogram, RecentQuantiles

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


def test_recent_quantiles_are_exact_over_the_last_minute() -> None:
    now = [1000.0]
    recent = RecentQuantiles("recent_seconds", "latency", clock=lambda: now[0])
    assert recent.quantiles() == {}
    recent.observe_all([9.0] * 100)  # a slow minute, about to leave the window
    now[0] += 61
    values = [i / 1000 for i in range(1, 1001)]  # 1 ms .. 1000 ms
    recent.observe_all(values[:400])
    recent.observe_all([])
    recent.observe_all(values[400:])
    assert recent.quantiles() == {0.5: 0.5, 0.95: 0.95, 0.99: 0.99}  # nearest rank
    registry = CollectorRegistry()
    registry.register(recent)
    got = {s.labels["quantile"]: s.value for fam in registry.collect() for s in fam.samples}
    assert got == {"0.5": 0.5, "0.95": 0.95, "0.99": 0.99}
    now[0] += 61
    assert recent.quantiles() == {}


def test_recent_quantiles_keep_the_newest_values_when_there_are_too_many() -> None:
    recent = RecentQuantiles("recent_seconds", "latency", cap=1000)
    for _ in range(50):
        recent.observe_all([5.0] * 100)
    recent.observe_all([0.1] * 1000)
    assert recent.held == 1000  # memory stays bounded at any rate
    assert recent.quantiles()[0.99] == 0.1
