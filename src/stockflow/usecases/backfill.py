"""Publish a history of input events with past event times to a running processor, in an
order it applies them in (`stockflow simulate --backfill-days`).

Nothing orders a key's events across input topics, so a shipment could be applied before
the receipt that stocked it (and oversell, unvalued), however slowly it was published:
before publishing an event of a key whose earlier events went to another topic, this waits
until the processor has applied everything published so far. Where the events come from
(a generated history) and how "applied" is watched are the caller's: this module stays on
the runtime side of the development tools."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from stockflow.adapters.publisher import Publisher
from stockflow.contract.events import INPUT_MODELS
from stockflow.contract.topics import TopicKind

__all__ = ["AppliedWait", "Backfilled", "publish_history"]

History = Iterable[tuple[str, dict[str, Any], datetime]]  # (type, data, event time)


class AppliedWait(Protocol):
    """Waits until the processor has applied everything published (and flushed) so far;
    `devtools.applied.AppliedWatch` is one."""

    def wait(self, stop: threading.Event, *,
             waiting: Callable[[float, int], None] | None = None) -> float:
        """Seconds waited until everything published so far was applied (`waiting` is
        told the seconds and the events still to apply as it goes)."""
        ...


@dataclass
class Backfilled:
    """What a backfill published, and how often it waited for the processor."""

    published: Counter[str] = field(default_factory=Counter)  # events by type
    waits: int = 0  # times the processor was waited for


def publish_history(publisher: Publisher, applied: AppliedWait, events: History, *,
                    rate: float, stop: threading.Event,
                    progress: Callable[[datetime], None] | None = None,
                    waiting: Callable[[float, int], None] | None = None) -> Backfilled:
    """Publish `events` (time order) at up to `rate` a second, waiting for the processor
    whenever a key's next event goes to another input topic than its unapplied ones; until
    they are all published or `stop` is set. `progress` hears each published event's time;
    `waiting`, see `AppliedWait.wait`."""
    done = Backfilled()
    started = time.monotonic()
    # per key, the topic of its events published since the processor last caught up
    unapplied: dict[str, TopicKind] = {}
    for type_, data, at in events:
        key, kind = f"{data['sku']}@{data['warehouse']}", INPUT_MODELS[type_][0]
        if unapplied.setdefault(key, kind) != kind:
            publisher.flush()
            started += applied.wait(stop, waiting=waiting)  # no burst to catch up after
            unapplied, done.waits = {key: kind}, done.waits + 1
        if stop.is_set():
            break
        ident = data.get("shipment_id") or data.get("receipt_id") or data.get("order_id")
        publisher.publish(type_, data, id_=str(ident), time=at)
        done.published[type_] += 1
        if (ahead := done.published.total() / rate - (time.monotonic() - started)) > 0.01:
            stop.wait(ahead)
        if progress is not None:
            progress(at)
    publisher.flush()
    return done
