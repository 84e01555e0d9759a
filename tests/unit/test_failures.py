"""What a failure means: classification, the outage wait loop, and bisection to the poison."""

from __future__ import annotations

import threading

import psycopg
import psycopg.errors
import pytest

from stockflow import StockflowError
from stockflow.adapters.db.batches import FencedError
from stockflow.engine.batch import Consumed
from stockflow.engine.failures import (
    CommitError,
    EmitError,
    Failure,
    GaveUpError,
    StoppedError,
    classify,
    describe,
    wait_out,
)
from stockflow.engine.isolation import MessageId, bisect


@pytest.mark.parametrize(("exc", "kind"), [
    (psycopg.OperationalError("server closed the connection unexpectedly"), Failure.OUTAGE),
    (psycopg.errors.AdminShutdown(), Failure.OUTAGE),
    (psycopg.errors.QueryCanceled(), Failure.OUTAGE),  # statement timeout
    (psycopg.errors.LockNotAvailable(), Failure.OUTAGE),
    (psycopg.errors.IdleInTransactionSessionTimeout(), Failure.OUTAGE),
    (psycopg.InterfaceError("the connection is closed"), Failure.OUTAGE),
    (EmitError("3 undelivered"), Failure.OUTAGE),
    (psycopg.errors.NumericValueOutOfRange(), Failure.POISON),
    (psycopg.errors.CheckViolation(), Failure.POISON),
    (psycopg.errors.ProgramLimitExceeded(), Failure.POISON),
    (OverflowError("date value out of range"), Failure.POISON),
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), Failure.POISON),
    (FencedError("moved"), Failure.FENCED),
    (psycopg.errors.UndefinedTable(), Failure.FATAL),
    (psycopg.errors.InsufficientPrivilege(), Failure.FATAL),
    (StockflowError("fatal consumer error"), Failure.FATAL),
    (KeyboardInterrupt(), Failure.FATAL),
])
def test_classify(exc: BaseException, kind: Failure) -> None:
    assert classify(exc) is kind


def test_describe_names_the_class_and_the_first_line_only() -> None:
    assert describe(ValueError("bad\nsecond line")) == "ValueError: bad"
    assert describe(OverflowError()) == "OverflowError: "
    assert len(describe(ValueError("x" * 5000))) == 1000


def _no_wait(**kw: object) -> dict[str, object]:
    return {"stop": threading.Event(), "first_delay": 0.001, "longest_delay": 0.002, **kw}


def test_wait_out_retries_outages_until_the_attempt_succeeds() -> None:
    calls: list[int] = []
    seen: list[BaseException | None] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise psycopg.OperationalError("connection refused")
        return "done"

    got = wait_out(attempt, psycopg.OperationalError("first"), give_up=0,
                   waiting=seen.append, **_no_wait())  # type: ignore[arg-type]
    assert got == "done"
    assert len(calls) == 4
    assert seen[-1] is None and all(isinstance(e, Exception) for e in seen[:-1])


def test_wait_out_stops_gives_up_and_lets_other_failures_through() -> None:
    def down() -> None:
        raise psycopg.OperationalError("connection refused")

    stop = threading.Event()
    stop.set()
    with pytest.raises(StoppedError):
        wait_out(down, psycopg.OperationalError("x"), stop=stop, give_up=0,
                 waiting=lambda _: None)
    with pytest.raises(GaveUpError):
        wait_out(down, psycopg.OperationalError("x"), give_up=0.01, waiting=lambda _: None,
                 **_no_wait())  # type: ignore[arg-type]

    def broken() -> None:
        raise psycopg.errors.UndefinedTable("no table")

    with pytest.raises(psycopg.errors.UndefinedTable):
        wait_out(broken, psycopg.OperationalError("x"), give_up=0, waiting=lambda _: None,
                 **_no_wait())  # type: ignore[arg-type]


def _batch(n: int) -> list[Consumed]:
    return [Consumed("t", i % 3, i, b"K@W", b"v") for i in range(n)]


@pytest.mark.parametrize("poison", [set(), {0}, {7}, {3, 4}, {0, 5, 11}, set(range(12))])
def test_bisect_commits_everything_once_and_dead_letters_exactly_the_poison(
        poison: set[int]) -> None:
    committed: list[tuple[int, bool]] = []  # (offset, dead)
    pending: list[tuple[int, bool]] = []

    def attempt(part: list[Consumed], dead: dict[MessageId, str]) -> None:
        pending.clear()
        for m in part:
            is_dead = (m.topic, m.partition, m.offset) in dead
            pending.append((m.offset, is_dead))
            if m.offset in poison and not is_dead:
                raise psycopg.errors.NumericValueOutOfRange("bigint out of range")
        committed.extend(pending)

    dead = bisect(_batch(12), attempt, pending.clear)  # type: ignore[arg-type]
    assert sorted(committed) == [(i, i in poison) for i in range(12)]
    assert [o for o, _ in committed] == sorted(o for o, _ in committed)  # consume order
    assert {off for _, _, off in dead} == poison
    assert all(why.startswith("NumericValueOutOfRange") for why in dead.values())


def test_bisect_lets_an_outage_through() -> None:
    def attempt(part: list[Consumed], dead: dict[MessageId, str]) -> None:
        raise psycopg.OperationalError("gone")

    with pytest.raises(psycopg.OperationalError):
        bisect(_batch(4), attempt, lambda: None)  # type: ignore[arg-type]


def _wrapped(step: type[CommitError], cause: BaseException) -> BaseException:
    try:
        raise step("failed") from cause
    except CommitError as exc:
        return exc


@pytest.mark.parametrize(("cause", "kind"), [
    (psycopg.errors.NumericValueOutOfRange("bigint out of range"), Failure.POISON),
    (psycopg.OperationalError("gone"), Failure.OUTAGE),
    (FencedError("moved"), Failure.FENCED),
    (psycopg.errors.UndefinedTable("no table"), Failure.FATAL),
])
def test_a_step_error_is_judged_by_its_cause_and_named_in_its_description(
        cause: BaseException, kind: Failure) -> None:
    exc = _wrapped(CommitError, cause)
    assert classify(exc) is kind
    assert describe(exc).startswith(f"commit: {type(cause).__name__}")
