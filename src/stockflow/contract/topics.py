"""The contract's topic names under one configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

__all__ = ["COORDINATOR_INPUTS", "INPUTS", "OUTPUTS", "TP", "TopicKind", "Topics"]

TP = tuple[str, int]  # a (topic, partition), as offsets, positions and lag are keyed


class TopicKind(StrEnum):
    """The contract's topics by role; `topics.Topics` maps them to names."""

    ORDERS = "orders"
    SHIPMENTS = "shipments"
    RECEIPTS = "receipts"
    ADJUSTMENTS = "adjustments"
    STOCK_CHANGED = "stock-changed"
    LOW_STOCK = "low-stock"
    OVERSELL = "oversell"
    RESERVATIONS = "reservations"
    REORDER = "reorder"
    DLQ = "dlq"
    ORDER_REQUESTS = "order-requests"  # contract v1.1: whole orders, for the coordinator
    ORDER_STATUS = "order-status"


INPUTS = (TopicKind.ORDERS, TopicKind.SHIPMENTS, TopicKind.RECEIPTS, TopicKind.ADJUSTMENTS)
OUTPUTS = (TopicKind.STOCK_CHANGED, TopicKind.LOW_STOCK, TopicKind.OVERSELL,
           TopicKind.RESERVATIONS, TopicKind.REORDER, TopicKind.DLQ, TopicKind.ORDER_STATUS)
# What the order coordinator consumes, co-partitioned with each other (key order_id): the
# order service's requests and the stock processor's verdicts on the parts it placed.
COORDINATOR_INPUTS = (TopicKind.ORDER_REQUESTS, TopicKind.RESERVATIONS)


@dataclass(frozen=True)
class Topics:
    """The contract's topic names under `prefix`."""

    prefix: str = "inventory."

    @cached_property
    def _names(self) -> dict[TopicKind, str]:
        # Named once: `name` runs for every output, and an enum's .value is a descriptor call.
        return {k: f"{self.prefix}{k.value}" for k in TopicKind}

    def name(self, kind: TopicKind) -> str:
        """The topic of `kind`."""
        return self._names[kind]

    def kind(self, name: str) -> TopicKind:
        """The kind of the topic `name`."""
        return TopicKind(name.removeprefix(self.prefix))

    @property
    def inputs(self) -> list[str]:
        """The topics the processor consumes."""
        return [self.name(k) for k in INPUTS]

    @property
    def all(self) -> list[str]:
        """Every topic, each once: to create them."""
        # reservations are both the processor's output and the coordinator's input
        return [self.name(k) for k in dict.fromkeys((*INPUTS, *COORDINATOR_INPUTS, *OUTPUTS))]
