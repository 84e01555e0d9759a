"""Outages are waited out: Postgres stopped for 30 s, and the broker restarted, mid-stream.
The processor process keeps running, reports not-ready meanwhile and ready again after,
and the result agrees exactly with the model, every output present and nothing on the DLQ
that the workload did not ask for."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

import pytest

from stockflow.contract.topics import TopicKind
from stockflow.devtools.localenv import LocalServices, Restartable, free_port
from stockflow.devtools.workload import generate
from tests.integration.checks import assert_agreement
from tests.integration.harness import (
    Env,
    log_of,
    make_env,
    publish,
    read_topic,
    ready,
    spawn,
    wait_drained,
)
from tests.integration.test_crashes import _trickle


def _until(check: Callable[[], bool], seconds: float, proc: subprocess.Popen[bytes]) -> float:
    """Seconds until `check()` holds; the processor must stay up all along."""
    started = time.monotonic()
    while not check():
        assert proc.poll() is None, log_of(proc)
        assert time.monotonic() - started < seconds, log_of(proc)
        time.sleep(0.2)
    return time.monotonic() - started


def _outage_mid_stream(services: LocalServices, unique: str, service: Restartable | None,
                       down_for: float, seed: int) -> None:
    assert service is not None, "outage tests need the Kafka and Postgres the suite starts"
    workload = generate(events=8_000, skus=100, warehouses=3, seed=seed)
    env: Env = make_env(services, unique, partitions=3)
    port = free_port()
    proc = spawn(env, extra={"STOCKFLOW_METRICS_PORT": str(port)})
    publish(env, workload.setup)
    wait_drained(env, alive=[proc])
    _until(lambda: ready(port), 30, proc)
    feeder = _trickle(env, workload.stream, seconds=12)
    time.sleep(3)  # well into the stream
    service.stop()
    stopped = time.monotonic()
    noticed = _until(lambda: not ready(port), 30, proc)
    time.sleep(max(0.0, down_for - (time.monotonic() - stopped)))
    service.start()
    back = _until(lambda: ready(port), 120, proc)
    print(f"\nnot ready {noticed:.1f} s after the stop; ready {back:.1f} s after the start")
    feeder.join(180)
    wait_drained(env, alive=[proc])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log_of(proc)
    assert_agreement(env, workload)
    # Outputs re-emitted after the outage may repeat (at least once, same bytes); the DLQ
    # holds nothing but the workload's own rejections, each input once.
    dlq = read_topic(env, TopicKind.DLQ)
    inputs = {tuple(h[f"stockflow.error.{k}"] for k in ("topic", "partition", "offset"))
              for _, _, h in dlq}
    assert len(inputs) == len(workload.expected_rejections), "the outage sent inputs to the DLQ"
    assert {v for _, v, _ in dlq} == {i.value for i in workload.expected_rejections}
    assert all(h["stockflow.error.reason"] != b"processing_error" for _, _, h in dlq)


@pytest.mark.exclusive
def test_postgres_stopped_for_30_seconds_mid_stream(services: LocalServices,
                                                    unique: str) -> None:
    _outage_mid_stream(services, unique, services.postgres, down_for=30, seed=41)


@pytest.mark.exclusive
def test_broker_restarted_mid_stream(services: LocalServices, unique: str) -> None:
    _outage_mid_stream(services, unique, services.kafka, down_for=10, seed=43)
