"""A generated stream end to end: Postgres, the outputs and an independent model agree."""

from __future__ import annotations

from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import generate
from tests.integration.checks import assert_agreement
from tests.integration.harness import make_env, processor_thread, publish, wait_drained


def test_stream_of_20k_events_agrees_with_the_model(services: LocalServices, unique: str) -> None:
    workload = generate(events=20_000, skus=200, warehouses=3, seed=11)
    assert len(workload.keys) >= 500
    ids = [i.id for i in workload.stream if i.id]
    assert len(ids) - len(set(ids)) >= 0.02 * len(workload.stream)
    env = make_env(services, unique, partitions=6)
    with processor_thread(env):
        publish(env, workload.setup)
        wait_drained(env)
        publish(env, workload.stream)
        wait_drained(env)
    assert_agreement(env, workload)
