"""What one group member believes about its partitions, as the host and its recovery
share it: which it owns, where each stands, and what Kafka has not been told yet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from stockflow.adapters.db.batches import Offsets
from stockflow.contract.topics import TP

__all__ = ["Member"]


@dataclass
class Member:
    """What one member believes of its partitions: which it owns, where each stands, and what
    is not mirrored to Kafka yet."""

    assigned: set[TP] = field(default_factory=set)
    positions: dict[TP, int] = field(default_factory=dict)  # next offsets, as decided
    unmirrored: dict[TP, int] = field(default_factory=dict)  # committed since the last mirror
    processed: int = 0  # messages decided and handed to the writer

    def decided(self, offsets: Offsets, messages: int) -> None:
        """A batch was decided: the positions move on."""
        self.positions.update({tp: a.to for tp, a in offsets.items()})
        self.processed += messages

    def committed(self, offsets: Offsets) -> None:
        """A batch was committed: its offsets are to be mirrored to Kafka."""
        self.unmirrored.update({tp: a.to for tp, a in offsets.items()})

    def release(self, gone: Iterable[TP]) -> None:
        """Forget partitions that are no longer this member's."""
        for tp in gone:
            self.assigned.discard(tp)
            self.positions.pop(tp, None)
            self.unmirrored.pop(tp, None)
