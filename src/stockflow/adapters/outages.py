"""An outage as an operator reads it, whatever client reports it: one line once a service
has been unreachable for `grace` seconds, a reminder at most every `remind` seconds while
it stays so, and one line when it answers again, with how long it was gone and how many
errors came meanwhile. The errors themselves are only counted (by the caller, in metrics):
librdkafka and aiokafka report failed connection attempts by the dozen a second during a
broker outage.

Errors while the service answers (a dropped connection, one broker of several away) are
said at most once every `remind` seconds, the last of them with how many others came, and
only `grace` seconds after the first: the first errors of an outage arrive before the
news that no broker answers, and belong to it. An outage shorter than `grace` (a client
reconnecting) is counted, not said.

Pure: time comes in as a number and lines go out as values. The caller keeps the `Link`,
logs what it is given, and calls `tick` now and then (about every second) while anything
is pending (`Link.pending`), so that lines are not left waiting for the next error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import NamedTuple

__all__ = ["GRACE", "REMIND", "Line", "Link", "Step", "answered", "failed", "tick",
           "unreachable"]

GRACE = 2.0  # seconds an outage lasts, or an error waits, before it is said
REMIND = 30.0  # seconds between two lines about the same trouble


class Line(NamedTuple):
    """A line to log about an outage, and its level."""

    level: int  # a logging level
    text: str


@dataclass(frozen=True)
class Link:
    """What is known of one service's reachability, and what is left to say about it."""

    name: str  # as the lines call it, e.g. "Kafka"
    grace: float = GRACE
    remind: float = REMIND
    down_since: float | None = None  # when the current outage began
    said_down: bool = False  # whether a line said so
    said_at: float = float("-inf")  # when the last line about errors was given
    errors: int = 0  # during the current outage
    unsaid: int = 0  # errors while up, not said yet
    unsaid_since: float = 0.0  # when the first of them came
    last_error: str = ""

    @property
    def up(self) -> bool:
        """Whether the service is reachable, as far as is known."""
        return self.down_since is None

    @property
    def pending(self) -> bool:
        """Whether a later `tick` may have something to say."""
        return not self.up or self.unsaid > 0


Step = tuple[Link, Line | None]


def unreachable(link: Link, now: float, error: str) -> Step:
    """Evidence that the service answers nobody (librdkafka: all brokers down)."""
    if link.up:  # the errors not said yet were this outage beginning
        link = replace(link, down_since=now, said_down=False, errors=link.unsaid + 1,
                       unsaid=0, last_error=error)
        return tick(link, now)
    return failed(link, now, error)


def failed(link: Link, now: float, error: str) -> Step:
    """One error of a client of the service."""
    if link.up:
        since = link.unsaid_since if link.unsaid else now
        return tick(replace(link, unsaid=link.unsaid + 1, unsaid_since=since,
                            last_error=error), now)
    return tick(replace(link, errors=link.errors + 1, last_error=error), now)


def tick(link: Link, now: float) -> Step:
    """What there is to say at `now`, if anything."""
    if link.down_since is not None:
        lasted = now - link.down_since
        if not link.said_down:
            if lasted < link.grace:
                return link, None
            return (replace(link, said_down=True, said_at=now),
                    Line(logging.WARNING, f"{link.name} unreachable for {lasted:.0f} s: "
                                          f"{link.last_error}"))
        if now - link.said_at < link.remind:
            return link, None
        return (replace(link, said_at=now),
                Line(logging.WARNING, f"{link.name} still unreachable after {lasted:.0f} s "
                                      f"({_errors(link.errors)} so far): {link.last_error}"))
    if not link.unsaid or now - link.unsaid_since < link.grace \
            or now - link.said_at < link.remind:
        return link, None
    others = f" ({link.unsaid - 1} more in the last {now - link.unsaid_since:.0f} s)" \
        if link.unsaid > 1 else ""
    return (replace(link, unsaid=0, said_at=now),
            Line(logging.WARNING, f"{link.name}: {link.last_error}{others}"))


def answered(link: Link, now: float) -> Step:
    """Evidence that the service answers again."""
    if link.down_since is None:
        return link, None
    lasted, errors = now - link.down_since, link.errors
    back = replace(link, down_since=None, said_down=False, errors=0)
    if not link.said_down and lasted < link.grace:
        return back, None
    return (replace(back, said_at=now),
            Line(logging.INFO, f"{link.name} reachable again after {lasted:.1f} s "
                               f"({_errors(errors)} meanwhile)"))


def _errors(n: int) -> str:
    return "1 error" if n == 1 else f"{n} errors"
