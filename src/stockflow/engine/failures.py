"""What a failed batch means, and so what the processor does about it.

- An **outage** (Postgres or the broker cannot be reached, a connection broke, the server
  is shutting down or ended the session, a statement timed out or waited too long for a
  lock, outputs were not delivered) is waited out and retried; it never sends anything to
  the DLQ.
- A **poison** failure (a data or integrity error from Postgres, or an exception in
  stockflow's own code while deciding or encoding) is caused by some message of the batch:
  the processor isolates it and dead-letters it with `processing_error`.
- **Fenced**: another member committed the partitions first; the batch is dropped.
- Anything else (a missing table, missing privileges: a deployment fault that no message
  can cause) is **fatal**: the process exits non-zero, saying why.

A checkpoint step's error (`StepError`) is judged by its cause.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

import psycopg
import psycopg.errors
from confluent_kafka import KafkaException

from stockflow import StockflowError
from stockflow.adapters.db.batches import FencedError
from stockflow.adapters.outages import REMIND

__all__ = ["CommitError", "DecideError", "EmitError", "Failure", "GaveUpError", "MarkError",
           "StepError", "StoppedError", "classify", "describe", "wait_out"]

log = logging.getLogger("stockflow.engine.failures")
T = TypeVar("T")


class StepError(StockflowError):
    """A step of the checkpoint failed; its `__cause__`, when there is one, says why and
    is what `classify` judges."""

    step = 0
    name = ""


class DecideError(StepError):
    """Step 1, decide, failed."""

    step, name = 1, "decide"


class CommitError(StepError):
    """Step 2, commit, failed."""

    step, name = 2, "commit"


class EmitError(StepError):
    """Outputs were not delivered; the outbox keeps them for the next attempt."""

    step, name = 3, "emit"


class MarkError(StepError):
    """Step 4, marking the outbox emitted, failed."""

    step, name = 4, "mark emitted"


class StoppedError(StockflowError):
    """A stop was requested while an outage was being waited out."""


class GaveUpError(StockflowError):
    """An outage lasted longer than the configured give-up time."""


class Failure(StrEnum):
    """What a failure is: an outage to wait out, a poison input, a fenced member, or fatal."""

    OUTAGE = "outage"
    POISON = "poison"
    FENCED = "fenced"
    FATAL = "fatal"


def classify(exc: BaseException) -> Failure:
    """What kind of failure `exc` is (a step's error is judged by its cause)."""
    if isinstance(exc, StepError) and exc.__cause__ is not None:
        return classify(exc.__cause__)
    if isinstance(exc, FencedError):
        return Failure.FENCED
    # A limit of Postgres met by a value (e.g. an index row too large) is the data's doing.
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError
                  | psycopg.errors.ProgramLimitExceeded):
        return Failure.POISON
    # Operational errors (connections, shutdowns, timeouts, locks, deadlocks, full disks)
    # and internal ones (a session ended by the server, a server fault) pass with time.
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | psycopg.InternalError
                  | EmitError | KafkaException):
        return Failure.OUTAGE
    if isinstance(exc, psycopg.Error | StockflowError) or not isinstance(exc, Exception):
        return Failure.FATAL
    return Failure.POISON  # a bug or a limit in stockflow's own code, met by some message


def describe(exc: BaseException) -> str:
    """The exception's class and first line, for logs and DLQ headers. Postgres errors
    give their primary message only: details may echo row values, never needed here."""
    if isinstance(exc, StepError) and exc.__cause__ is not None:
        return f"{exc.name}: {describe(exc.__cause__)}"[:1000]
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        text = exc.diag.message_primary
    else:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:1000]


def wait_out(
    attempt: Callable[[], T], first: BaseException, *, stop: threading.Event, give_up: float,
    waiting: Callable[[BaseException | None], None], first_delay: float = 0.2,
    longest_delay: float = 5.0,
) -> T:
    """Try `attempt` with exponential back-off until it runs without an outage; returns
    its result. `waiting(exc)` is told before each try what the last one failed with, and
    with None once it succeeded. Raises StoppedError when `stop` is set, GaveUpError after
    `give_up` seconds (0: never), and any failure that is not an outage as it is."""
    started = said = time.monotonic()
    log.warning("outage, waiting it out: %s", describe(first))
    delay, last = first_delay, first
    while True:
        waiting(last)
        if stop.wait(delay):
            raise StoppedError("stopped while waiting out an outage")
        try:
            result = attempt()
        except Exception as exc:
            if classify(exc) is not Failure.OUTAGE:
                raise
            last, waited = exc, time.monotonic() - started
            if give_up and waited > give_up:
                raise GaveUpError(f"outage not over after {waited:.0f} s "
                                  f"(STOCKFLOW_OUTAGE_GIVE_UP): {describe(exc)}") from exc
            if time.monotonic() - said > REMIND:
                said = time.monotonic()
                log.warning("still waiting after %.0f s: %s", waited, describe(exc))
            delay = min(delay * 2, longest_delay)
            continue
        waiting(None)
        log.info("outage over after %.1f s", time.monotonic() - started)
        return result
