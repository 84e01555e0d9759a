"""Group membership: a member stopped cleanly hands its partitions over at once, however
long its session timeout: its close leaves the group (see
`stockflow.adapters.kafka.consumer`)."""

from __future__ import annotations

import signal
import time

from stockflow.devtools.localenv import LocalServices
from tests.integration.harness import log_of, make_env, spawn

ALL = "assigned partitions [0, 1, 2] of 4 topics"


def test_a_member_stopped_cleanly_hands_its_partitions_over_at_once(
        services: LocalServices, unique: str) -> None:
    env = make_env(services, unique, partitions=3)  # a 6 s session timeout
    info = {"STOCKFLOW_LOG_LEVEL": "INFO"}
    first = spawn(env, extra=info)
    deadline = time.monotonic() + 60
    while ALL not in log_of(first):
        assert first.poll() is None and time.monotonic() < deadline, log_of(first)
        time.sleep(0.2)
    second = spawn(env, extra=info)
    try:
        while "assigned partitions" not in log_of(second) or "revoked" not in log_of(first):
            assert second.poll() is None and time.monotonic() < deadline, log_of(second)
            time.sleep(0.2)
        assert ALL not in log_of(second)  # the partitions are shared
        time.sleep(1)
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0, log_of(first)
        stopped = time.monotonic()
        while ALL not in log_of(second):
            assert second.poll() is None, log_of(second)
            assert time.monotonic() - stopped < 20, log_of(second)
            time.sleep(0.1)
        handed = time.monotonic() - stopped
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    print(f"\nthe other member had every partition {handed:.1f} s after the first stopped")
    assert handed < 4.0, "not before the session timed out: the member did not leave"
