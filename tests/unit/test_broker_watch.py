"""What librdkafka reports becomes counts, and an outage said once."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from stockflow.adapters.broker_watch import BrokerWatch

REFUSED = "Connect to ipv4#127.0.0.1:9092 failed: Connection refused"


def test_errors_are_counted_and_an_outage_said_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    kinds: list[str] = []
    states: list[bool] = []
    watch = BrokerWatch(counted=kinds.append, reachable=states.append, clock=lambda: now[0],
                        every=0.01)
    with caplog.at_level(logging.INFO, logger="stockflow.adapters.kafka"):
        # librdkafka's own lines: a failed connection is told as an error, the rest passes
        watch.log(logging.ERROR, "%s [%s] %s", "FAIL", "stockflow#consumer-1", REFUSED)
        watch.log(logging.WARNING, "%s [%s] %s", "CONFWARN", "stockflow#consumer-1",
                  "unknown property")
        watch.error(KafkaError(KafkaError._TRANSPORT, REFUSED))  # noqa: SLF001
        watch.error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))  # noqa: SLF001
        assert not watch.ok
        now[0] = 3.0
        for _ in range(50):
            watch.error(KafkaError(KafkaError._TRANSPORT, REFUSED))  # noqa: SLF001
        watch.up()
        watch.up()
    assert [r.getMessage() for r in caplog.records] == [
        "CONFWARN [stockflow#consumer-1] unknown property",
        f"Kafka unreachable for 3 s: {REFUSED}",
        "Kafka reachable again after 3.0 s (52 errors meanwhile)",
    ]
    assert kinds == ["transport", "all_brokers_down", *["transport"] * 50]
    assert states == [True, False, True]
    assert watch.ok


def test_a_fatal_error_is_said_at_once_and_kept_for_the_owner(
        caplog: pytest.LogCaptureFixture) -> None:
    watch = BrokerWatch()
    assert watch.fatal is None
    with caplog.at_level(logging.INFO, logger="stockflow.adapters.kafka"):
        watch.error(KafkaError(KafkaError._FENCED, "producer fenced", fatal=True))  # noqa: SLF001
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "kafka: producer fenced")]
    assert watch.ok
    assert watch.fatal == "producer fenced"  # the processor stops on it rather than hang
