"""What a process's Kafka clients say about the brokers, told the way an operator reads an
outage (`stockflow.adapters.outages`): each error counted by kind, one line when no broker
has answered for a while, a reminder while that lasts, one line when one answers again.

A watch is every librdkafka client's `error_cb` and `logger` (`config()`); the relay feeds
it aiokafka's errors too (`stockflow.adapters.aiokafka_logs`). librdkafka says when all
brokers are down but not when one is back: while they are down, the watch asks for
metadata once a second (`probe_with`), and any caller that got an answer says so (`up`).
The same thread gives lines that wait on time (an outage said after its grace, a
reminder) when no error comes to prompt them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from stockflow.adapters import outages

__all__ = ["BrokerWatch", "kind_of"]

# the clients' own logger: librdkafka's lines and the outage lines appear under it
_kafka_log = logging.getLogger("stockflow.adapters.kafka")

# librdkafka's local error codes are exposed with a leading underscore
_FATAL = KafkaError._FATAL  # noqa: SLF001
_ALL_BROKERS_DOWN = KafkaError._ALL_BROKERS_DOWN  # noqa: SLF001
# librdkafka lines told otherwise, and dropped: each failed connection (FAIL) is reported
# to error_cb as well, and counted and told as part of its outage; an expired group
# session (SESSTMOUT) is told by the consumer's owner, who loses its partitions with it.
_TOLD_OTHERWISE = frozenset({"FAIL", "SESSTMOUT"})


def kind_of(err: KafkaError) -> str:
    """The `kind` label of a librdkafka error: its code's name, e.g. transport,
    all_brokers_down, resolve, timed_out (a bounded set: librdkafka's error codes)."""
    return str(err.name()).lstrip("_").lower()


def _nothing(*_: object) -> None:
    return


class BrokerWatch:
    """Whether any Kafka broker answers, as this process's clients see it (`ok`). Thread-
    safe: librdkafka calls back from whichever thread polls its client. `counted(kind)`
    hears of every error, `reachable(ok)` of every change of `ok`."""

    def __init__(self, *, counted: Callable[[str], None] = _nothing,
                 reachable: Callable[[bool], None] = _nothing,
                 clock: Callable[[], float] = time.monotonic, every: float = 1.0) -> None:
        self.counted, self.reachable, self.clock = counted, reachable, clock
        self.every = every  # seconds between two ticks (and probes) while anything is pending
        self.link = outages.Link("Kafka")
        self.lock = threading.Lock()
        self.probe_conf: dict[str, Any] | None = None
        self.watching = False  # a thread ticks (see `_watch`)
        # a client's fatal error: that client can do nothing more, its owner must stop
        self.fatal: str | None = None
        reachable(True)

    @property
    def ok(self) -> bool:
        """Whether a broker is reachable now."""
        return self.link.up

    def config(self) -> dict[str, Any]:
        """The librdkafka settings that make a client report to this watch."""
        return {"error_cb": self.error, "logger": self}

    def probe_with(self, conf: dict[str, Any]) -> None:
        """The client settings (bootstrap, security) the probe connects with; the first
        given are kept."""
        with self.lock:
            if self.probe_conf is None:
                # librdkafka backs off reconnecting up to 10 s: the probe would notice a
                # broker back that much late
                self.probe_conf = {**conf, **self.config(),
                                   "reconnect.backoff.max.ms": int(self.every * 1000)}

    # --- what clients report -----------------------------------------------------------

    def error(self, err: KafkaError) -> None:
        """librdkafka's error callback."""
        self.counted(kind_of(err))
        # librdkafka reports a fatal error with the code _FATAL, not always the flag
        if err.fatal() or err.code() == _FATAL:
            self.fatal = err.str()
            _kafka_log.error("kafka: %s", err.str())
        elif err.code() == _ALL_BROKERS_DOWN:
            self._step(outages.unreachable, err.str())
        else:
            self._step(outages.failed, err.str())

    def log(self, level: int, fmt: str, *args: Any) -> None:
        """librdkafka's log lines (the `logger` setting calls this as Logger.log): through
        Python logging, as JSON like the rest (some are told otherwise: see above)."""
        if not (args and args[0] in _TOLD_OTHERWISE):
            _kafka_log.log(level, fmt, *args)

    def failed(self, kind: str, detail: str) -> None:
        """Another client's error (the relay's aiokafka)."""
        self.counted(kind)
        self._step(outages.failed, detail)

    def unreachable(self, kind: str, detail: str) -> None:
        """Another client found no broker answering."""
        self.counted(kind)
        self._step(outages.unreachable, detail)

    def up(self) -> None:
        """A broker answered."""
        if self.link.up:  # the hot path: every batch says so
            return
        with self.lock:
            was_up = self.link.up
            self.link, line = outages.answered(self.link, self.clock())
            if not was_up:  # under the lock: reports of two threads keep their order
                self.reachable(True)
        self._say(line)

    # --- keeping time ------------------------------------------------------------------

    def _step(self, step: Callable[[outages.Link, float, str], outages.Step],
              detail: str) -> None:
        with self.lock:
            was_up = self.link.up
            self.link, line = step(self.link, self.clock(), detail)
            if was_up and not self.link.up:
                self.reachable(False)
            start = self.link.pending and not self.watching
            self.watching = self.watching or start
        if start:
            threading.Thread(target=self._watch, name="stockflow-kafka-watch",
                             daemon=True).start()
        self._say(line)

    def _say(self, line: outages.Line | None) -> None:
        if line:
            _kafka_log.log(line.level, "%s", line.text)

    def _watch(self) -> None:
        """While something is pending, once a second: what there is to say, and while no
        broker answers, a metadata request (librdkafka never says when one is back)."""
        client: AdminClient | None = None
        while True:
            with self.lock:
                if not self.link.pending:
                    self.watching = False
                    return
                probe = None if self.link.up else self.probe_conf
            began = time.monotonic()
            if probe is not None:
                client = client or AdminClient(probe)
                try:
                    if client.list_topics(timeout=self.every).brokers:
                        self.up()
                except KafkaException:
                    pass  # its error reached `error` too
            with self.lock:
                self.link, line = outages.tick(self.link, self.clock())
            self._say(line)
            time.sleep(max(0.0, self.every - (time.monotonic() - began)))
