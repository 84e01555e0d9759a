"""Finding the messages that make a batch fail, by bisection.

A batch that fails because of its data (see `failures`) is split in halves, each tried on
its own in consume order; a half that fails is split again, down to single messages. A
single message that still fails is tried once more as dead: the attempt then sends it to
the DLQ instead of applying it. Every message is thus committed exactly once, either
applied or dead-lettered, and per partition in offset order (each part is a contiguous
run of the batch, and consume order is offset order within a partition).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from stockflow import StockflowError
from stockflow.engine.batch import Consumed
from stockflow.engine.failures import Failure, classify, describe

__all__ = ["MessageId", "bisect"]

MessageId = tuple[str, int, int]  # (topic, partition, offset)


def bisect(
    batch: list[Consumed],
    attempt: Callable[[list[Consumed], Mapping[MessageId, str]], None],
    undo: Callable[[], None],
) -> dict[MessageId, str]:
    """Commit `batch` part by part with `attempt(part, dead)`, where `dead` maps the
    messages to dead-letter to what made them fail; `undo()` forgets the effects of a
    failed attempt. Returns `dead`. Failures that are not poison propagate."""
    dead: dict[MessageId, str] = {}
    todo = [batch]
    while todo:
        part = todo.pop()
        try:
            attempt(part, dead)
        except Exception as exc:
            if classify(exc) is not Failure.POISON:
                raise
            undo()
            first = part[0]
            ident = (first.topic, first.partition, first.offset)
            if len(part) > 1:
                mid = len(part) // 2
                todo += [part[mid:], part[:mid]]
            elif ident in dead:
                raise StockflowError(f"dead-lettering failed: {describe(exc)}") from exc
            else:
                dead[ident] = describe(exc)
                todo.append(part)
    return dead
