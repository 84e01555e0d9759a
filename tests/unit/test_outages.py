"""The log-once state machine: a fake clock, errors in, lines out."""

from __future__ import annotations

import logging

from stockflow.adapters.outages import Line, Link, answered, failed, tick, unreachable

REFUSED = "Connect to ipv4#127.0.0.1:9092 failed: Connection refused"


class Feed:
    """Drives a Link through time as a watch does, keeping the lines it gives."""

    def __init__(self) -> None:
        self.link, self.lines = Link("Kafka"), list[Line]()

    def error(self, now: float, *, down: bool = False, text: str = REFUSED) -> None:
        self._keep(*(unreachable if down else failed)(self.link, now, text))

    def tick(self, now: float) -> None:
        self._keep(*tick(self.link, now))

    def back(self, now: float) -> None:
        self._keep(*answered(self.link, now))

    def _keep(self, link: Link, line: Line | None) -> None:
        self.link = link
        if line:
            self.lines.append(line)


def test_a_12_second_outage_is_two_lines_whatever_the_error_rate() -> None:
    feed = Feed()
    feed.error(0.0, down=True)
    for i in range(1, 300):  # 25 errors a second, as librdkafka's clients report them
        feed.error(i * 0.04, down=i % 10 == 0)
        if i % 25 == 0:
            feed.tick(i * 0.04)
    feed.back(12.0)
    assert feed.lines == [
        Line(logging.WARNING, f"Kafka unreachable for 2 s: {REFUSED}"),
        Line(logging.INFO, "Kafka reachable again after 12.0 s (300 errors meanwhile)"),
    ]
    assert feed.link.up and not feed.link.pending


def test_a_quiet_outage_is_said_on_time_by_the_ticks() -> None:
    feed = Feed()
    feed.error(5.0, down=True)  # librdkafka suppresses identical errors: few come
    for t in (6.0, 7.0, 8.0):
        feed.tick(t)
    feed.back(9.5)
    assert [line.text for line in feed.lines] == [
        f"Kafka unreachable for 2 s: {REFUSED}",
        "Kafka reachable again after 4.5 s (1 error meanwhile)"]


def test_a_long_outage_is_recalled_at_most_every_30_seconds_with_how_long() -> None:
    feed = Feed()
    feed.error(0.0, down=True)
    t = 0.0
    while t < 95:
        t += 0.5
        feed.error(t)
        feed.tick(t)
    feed.back(96.0)
    assert [line.text for line in feed.lines] == [
        f"Kafka unreachable for 2 s: {REFUSED}",
        f"Kafka still unreachable after 32 s (65 errors so far): {REFUSED}",
        f"Kafka still unreachable after 62 s (125 errors so far): {REFUSED}",
        f"Kafka still unreachable after 92 s (185 errors so far): {REFUSED}",
        "Kafka reachable again after 96.0 s (191 errors meanwhile)",
    ]


def test_an_outage_shorter_than_the_grace_is_counted_not_said() -> None:
    feed = Feed()
    feed.error(100.0, down=True)
    feed.error(100.3)
    feed.tick(100.5)
    feed.back(100.7)
    feed.tick(140.0)
    assert feed.lines == []
    assert feed.link.up and not feed.link.pending


def test_the_first_errors_of_an_outage_are_part_of_it() -> None:
    feed = Feed()
    feed.error(0.0, text="Disconnected")  # a connection drops before all brokers are down
    feed.error(0.01)
    feed.error(0.02, down=True)
    feed.tick(1.0)
    feed.tick(3.0)
    feed.back(12.0)
    assert [line.text for line in feed.lines] == [
        f"Kafka unreachable for 3 s: {REFUSED}",
        "Kafka reachable again after 12.0 s (3 errors meanwhile)"]


def test_errors_while_reachable_are_said_late_and_at_most_every_30_seconds() -> None:
    feed = Feed()
    for t in (0.0, 1.0, 2.0, 3.0, 29.0, 31.0, 32.0, 61.0, 62.0, 63.0):
        feed.error(t, text=f"Disconnected at {t:.0f}")
        feed.tick(t)
    assert feed.lines == [
        Line(logging.WARNING, "Kafka: Disconnected at 2 (2 more in the last 2 s)"),
        Line(logging.WARNING, "Kafka: Disconnected at 32 (3 more in the last 29 s)"),
        Line(logging.WARNING, "Kafka: Disconnected at 63 (2 more in the last 2 s)"),
    ]
    feed.error(64.0, text="Disconnected at 64")
    feed.tick(70.0)
    assert feed.link.pending and len(feed.lines) == 3
    feed.tick(93.0)
    assert feed.lines[-1] == Line(logging.WARNING, "Kafka: Disconnected at 64")
    assert not feed.link.pending


def test_after_an_outage_reconnection_noise_is_no_new_outage() -> None:
    feed = Feed()
    feed.error(0.0, down=True)
    feed.tick(3.0)
    feed.back(12.0)
    feed.error(12.5, text="Disconnected")  # the restarted broker drops a connection
    feed.error(12.6, down=True)  # and its client finds no broker for a moment
    feed.back(13.0)
    feed.tick(14.0)
    assert [line.text for line in feed.lines] == [
        f"Kafka unreachable for 3 s: {REFUSED}",
        "Kafka reachable again after 12.0 s (1 error meanwhile)",
    ]
