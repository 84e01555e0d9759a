"""The contract's topic names under one configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass

from stockflow.events import TopicKind

__all__ = ["INPUTS", "OUTPUTS", "Topics"]

INPUTS = (TopicKind.ORDERS, TopicKind.SHIPMENTS, TopicKind.RECEIPTS, TopicKind.ADJUSTMENTS)
OUTPUTS = (TopicKind.STOCK_CHANGED, TopicKind.LOW_STOCK, TopicKind.OVERSELL,
           TopicKind.RESERVATIONS, TopicKind.DLQ)


@dataclass(frozen=True)
class Topics:
    prefix: str = "inventory."

    def name(self, kind: TopicKind) -> str:
        return f"{self.prefix}{kind.value}"

    def kind(self, name: str) -> TopicKind:
        return TopicKind(name.removeprefix(self.prefix))

    @property
    def inputs(self) -> list[str]:
        return [self.name(k) for k in INPUTS]

    @property
    def all(self) -> list[str]:
        return [self.name(k) for k in (*INPUTS, *OUTPUTS)]
