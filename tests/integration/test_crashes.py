"""Exactly once across SIGKILL and rebalances: the processor is killed mid-stream and the
result still agrees exactly with the model, with every expected output present."""

from __future__ import annotations

import random
import signal
import threading
import time

from stockflow.devtools.localenv import LocalServices
from stockflow.devtools.workload import Item, generate
from tests.integration.checks import assert_agreement
from tests.integration.harness import Env, log_of, make_env, publish, spawn, wait_drained


def _trickle(env: Env, items: list[Item], seconds: float) -> threading.Thread:
    """Publish `items` spread over about `seconds`, so kills land mid-stream."""
    chunks = [items[i:i + 500] for i in range(0, len(items), 500)]

    def run() -> None:
        for chunk in chunks:
            publish(env, chunk)
            time.sleep(seconds / len(chunks))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _until_every_partition_committed(env: Env, partitions: int) -> None:
    deadline = time.monotonic() + 60
    with env.db() as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(DISTINCT partition) FROM consumer_offsets"
                               " WHERE group_id = %s AND topic = %s",
                               (env.settings.group_id, env.topics.inputs[0])).fetchone()
            if row == (partitions,):
                return
            time.sleep(0.2)
    raise AssertionError("not every partition was committed in time")


def test_sigkill_at_random_moments_and_restart(services: LocalServices, unique: str) -> None:
    rng = random.Random(unique)
    workload = generate(events=20_000, skus=200, warehouses=3, seed=23)
    env = make_env(services, unique, partitions=3)
    proc = spawn(env, instance="p1")
    publish(env, workload.setup)
    wait_drained(env, alive=[proc])
    feeder = _trickle(env, workload.stream, seconds=10)
    kills = 0
    while kills < 6 or feeder.is_alive():
        time.sleep(rng.uniform(0.4, 1.6))
        assert proc.poll() is None, log_of(proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 1
        proc = spawn(env, instance="p1")
    wait_drained(env, alive=[proc])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log_of(proc)
    assert kills >= 5
    assert_agreement(env, workload)


def test_two_processors_in_one_group_one_killed(services: LocalServices, unique: str) -> None:
    workload = generate(events=20_000, skus=200, warehouses=3, seed=31)
    env = make_env(services, unique, partitions=6)
    first, second = spawn(env), spawn(env)
    publish(env, workload.setup)
    wait_drained(env, alive=[first, second])  # opening stock first: the workload needs it
    feeder = _trickle(env, workload.stream, seconds=8)
    _until_every_partition_committed(env, 6)  # so both members own and commit partitions
    assert second.poll() is None, log_of(second)
    second.send_signal(signal.SIGKILL)
    second.wait(10)
    feeder.join()
    wait_drained(env, alive=[first])
    first.send_signal(signal.SIGTERM)
    assert first.wait(60) == 0, log_of(first)
    assert_agreement(env, workload)
