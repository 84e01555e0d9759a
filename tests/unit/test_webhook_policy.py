"""The relay's pure policy: pattern matching, what an answer means, the retry schedule with
its jitter and Retry-After, and the disable rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockflow.domain.webhooks import (
    DEFAULT_SCHEDULE,
    Answer,
    RetryPolicy,
    Verdict,
    matches,
    parse_schedule,
    valid_pattern,
    verdict,
)


@pytest.mark.parametrize(("patterns", "value", "expected"), [
    (["stock.changed"], "stock.changed", True),
    (["stock.changed"], "stock.changed.x", False),
    (["low-stock.*"], "low-stock.raised", True),
    (["low-stock.*"], "low-stock", False),
    (["reservation.*"], "reservation.accepted", True),
    (["oversell.detected", "reservation.*"], "oversell.detected", True),
    (["*"], "anything.at-all", True),
    (["SKU-1@*"], "SKU-1@WH-1", True),
    (["SKU-1@*"], "SKU-10@WH-1", False),
    (["*@WH-2"], "SKU-1@WH-2", True),
    (["SKU.1@*"], "SKUx1@WH", False),  # a dot is a dot, not "any character"
])
def test_patterns_match_whole_values(patterns: list[str], value: str, expected: bool) -> None:
    assert matches(patterns, value) is expected


@pytest.mark.parametrize("pattern", ["", "a b", "a?b", "[abc]", "a/b", "x" * 201])
def test_patterns_refuse_what_keys_and_types_cannot_hold(pattern: str) -> None:
    assert not valid_pattern(pattern)


@pytest.mark.parametrize(("answer", "expected"), [
    (Answer(200), Verdict.DELIVERED),
    (Answer(204), Verdict.DELIVERED),
    (Answer(299), Verdict.DELIVERED),
    (Answer(301), Verdict.FAILED),  # redirects are never followed
    (Answer(302), Verdict.FAILED),
    (Answer(400), Verdict.FAILED),
    (Answer(410), Verdict.GONE),
    (Answer(429, retry_after=5), Verdict.FAILED),
    (Answer(500), Verdict.FAILED),
    (Answer(None, error="timeout"), Verdict.FAILED),
])
def test_verdicts(answer: Answer, expected: Verdict) -> None:
    assert verdict(answer) is expected


def test_the_default_schedule_is_eight_attempts_over_about_a_day() -> None:
    policy = RetryPolicy()
    assert policy.attempts == 8
    assert DEFAULT_SCHEDULE[:3] == (0, 5, 300)
    assert 26 * 3600 < sum(DEFAULT_SCHEDULE) < 28 * 3600


@given(st.integers(min_value=1, max_value=7), st.floats(min_value=0, max_value=0.999999))
def test_waits_stay_within_the_jitter(made: int, draw: float) -> None:
    policy = RetryPolicy()
    wait = policy.next_wait(made, Answer(500), draw)
    assert wait is not None
    nominal = DEFAULT_SCHEDULE[made]
    assert nominal * 0.8 <= wait <= nominal * 1.2


def test_the_schedule_runs_out() -> None:
    policy = RetryPolicy(schedule=(0, 1, 2))
    assert policy.next_wait(2, Answer(500), 0.5) == 2
    assert policy.next_wait(3, Answer(500), 0.5) is None


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_on_429_and_503(status: int) -> None:
    policy = RetryPolicy(schedule=(0, 1, 1))
    assert policy.next_wait(1, Answer(status, retry_after=30), 0.5) == 30
    # but never beyond the cap, and never shorter than the schedule
    assert policy.next_wait(1, Answer(status, retry_after=10**9), 0.5) == 36000
    assert policy.next_wait(1, Answer(status, retry_after=0), 0.5) == 1


def test_retry_after_is_ignored_on_other_statuses() -> None:
    assert RetryPolicy(schedule=(0, 1)).next_wait(1, Answer(500, retry_after=30), 0.5) == 1


def test_an_endpoint_failing_for_the_whole_period_is_disabled() -> None:
    policy = RetryPolicy(disable_after=timedelta(days=5))
    now = datetime(2026, 11, 22, tzinfo=UTC)
    assert not policy.should_disable(None, now)
    assert not policy.should_disable(now - timedelta(days=4, hours=23), now)
    assert policy.should_disable(now - timedelta(days=5), now)


@pytest.mark.parametrize(("text", "expected"), [
    ("0,5,300", (0.0, 5.0, 300.0)),
    ("0.5", (0.5,)),
])
def test_schedule_settings(text: str, expected: tuple[float, ...]) -> None:
    assert parse_schedule(text) == expected


@pytest.mark.parametrize("text", ["", "a,b", "1,-1", "1,,2"])
def test_bad_schedule_settings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="schedule"):
        parse_schedule(text)
