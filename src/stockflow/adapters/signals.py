"""SIGINT and SIGTERM as a stop flag, for long work that stops cleanly; and SIGTERM before
that, while a command is still starting, as a clean exit."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["exit_if_stopped_while_starting", "stop_on_signals"]

log = logging.getLogger("stockflow")


def _stopped_while_starting(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def exit_if_stopped_while_starting() -> None:
    """From now until a command takes signals over (`stop_on_signals`), SIGTERM exits 0:
    nothing is under way yet, so stopping is clean. Without it, a process told to stop
    while it was still importing and connecting died by the signal (exit -15): an
    orchestrator that stops a pod right after starting it saw a crash (and so did the
    suite's crash test, which stops a processor it has just restarted)."""
    signal.signal(signal.SIGTERM, _stopped_while_starting)


@contextmanager
def stop_on_signals(then: Callable[[], None] | None = None) -> Iterator[threading.Event]:
    """A stop flag set by SIGINT/SIGTERM, which also call `then`; the previous handlers
    come back afterwards."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: finishing the work in hand", signal.Signals(signum).name)
        stop.set()
        if then is not None:
            then()

    old = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)
