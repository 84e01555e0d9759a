"""What the webhook relay decides, as pure functions: which endpoints want an event, what
an attempt's answer means, when the next attempt is due, and when an endpoint that keeps
failing is disabled. Time and randomness come in as arguments.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

__all__ = [
    "DEFAULT_SCHEDULE",
    "Answer",
    "RetryPolicy",
    "Verdict",
    "matches",
    "parse_schedule",
    "valid_pattern",
    "verdict",
]

# Seconds before each attempt: the first at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h
# and 10 h; eight attempts over about 27 hours.
DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
_PATTERN = re.compile(r"^[A-Za-z0-9._@*-]{1,200}$")


def valid_pattern(pattern: str) -> bool:
    """An event or key pattern: the characters of event types and keys, and `*` for any run
    of characters (`low-stock.*`, `SKU-1@*`, `*`)."""
    return bool(_PATTERN.match(pattern))


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$")


def matches(patterns: Iterable[str], value: str) -> bool:
    """Whether any pattern matches `value` whole; `*` matches any run of characters."""
    return any(_compiled(p).match(value) for p in patterns)


class Verdict(enum.Enum):
    """What became of one delivery attempt."""

    DELIVERED = "delivered"  # a 2xx within the timeout
    FAILED = "failed"  # anything else: retried on the schedule
    GONE = "gone"  # 410: the receiver asked to stop; the endpoint is disabled


@dataclass(frozen=True)
class Answer:
    """What one attempt got back: a status code, or an error (timeout, refused, TLS...)."""

    status: int | None
    retry_after: float | None = None  # seconds, from a 429 or 503's Retry-After
    error: str | None = None


def verdict(answer: Answer) -> Verdict:
    """Redirects are failures: they are never followed (a registered URL must not lead
    the relay elsewhere)."""
    if answer.status is not None and 200 <= answer.status < 300:
        return Verdict.DELIVERED
    if answer.status == 410:
        return Verdict.GONE
    return Verdict.FAILED


@dataclass(frozen=True)
class RetryPolicy:
    """When attempts are made and when an endpoint is given up on."""

    schedule: Sequence[float] = DEFAULT_SCHEDULE  # seconds before attempt 1, 2, ...
    jitter: float = 0.2  # each wait is drawn within ±20%
    disable_after: timedelta = timedelta(days=5)  # of failing without one success
    max_retry_after: timedelta = timedelta(hours=10)  # a Retry-After is honoured up to this

    @property
    def attempts(self) -> int:
        """How many attempts a delivery gets in all."""
        return len(self.schedule)

    def next_wait(self, made: int, answer: Answer, draw: float) -> float | None:
        """Seconds until the next attempt after `made` attempts, the last of which got
        `answer`; None once the schedule is used up. `draw` is uniform in [0, 1): the wait
        is spread over ±jitter so that failures of many deliveries do not retry at once."""
        if made >= len(self.schedule):
            return None
        wait = self.schedule[made] * (1 + self.jitter * (2 * draw - 1))
        if answer.retry_after is not None and answer.status in (429, 503):
            wait = max(wait, min(answer.retry_after, self.max_retry_after.total_seconds()))
        return max(0.0, wait)

    def should_disable(self, failing_since: datetime | None, now: datetime) -> bool:
        """Whether an endpoint failing without a success since `failing_since` is disabled."""
        return failing_since is not None and now - failing_since >= self.disable_after


def parse_schedule(text: str) -> tuple[float, ...]:
    """A schedule setting: seconds before each attempt, comma-separated (`0,5,300`)."""
    try:
        waits = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"a retry schedule is comma-separated seconds, not {text!r}") from None
    if not waits or any(w < 0 for w in waits):
        raise ValueError("a retry schedule needs at least one wait, none negative")
    return waits
