"""The order coordinator's Prometheus metrics: orders by the status they were given, how
long the first answer took, parts per allocated order, re-sourcing, and the orders still
open or waiting on the processor (read from Postgres at housekeeping)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["OrderMetrics"]

# the reasons the coordinator itself gives (rejections, and cancels it did not receive)
_SYSTEM_REASONS = frozenset({"insufficient_stock", "expired", "stock_lost", "part_expired",
                             "part_released"})


class OrderMetrics:
    """The coordinator's `OrderWatch` as Prometheus metrics in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.statuses = Counter(
            "stockflow_order_statuses", "Order statuses emitted, by type and reason",
            ["status", "reason"], registry=registry)
        self.answer = Histogram(
            "stockflow_order_answer_seconds",
            "From an order.requested's time to the order's first status (allocated, "
            "rejected or cancelled)", registry=registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.parts = Histogram(
            "stockflow_order_parts", "Parts (line x warehouse shares) of an allocated order",
            registry=registry, buckets=(1, 2, 3, 4, 5, 8, 12, 20, 50, 100))
        self.resourced = Counter(
            "stockflow_order_resourced", "Parts placed again elsewhere after a rejection or "
            "a remediation released them", registry=registry)
        self.open = Gauge("stockflow_orders_open", "Orders not ended (allocating, allocated, "
                          "confirming, releasing)", registry=registry)
        self.waiting_oldest = Gauge(
            "stockflow_order_oldest_waiting_seconds",
            "Age of the oldest order waiting on the processor (allocating, confirming or "
            "releasing) since its last change", registry=registry)

    def status(self, status: str, reason: str | None) -> None:
        # a cancel's reason is the order service's own text: one label value for all of them
        # (unbounded label values would grow Prometheus without end)
        known = reason in _SYSTEM_REASONS or reason is None
        self.statuses.labels(status, (reason or "") if known else "requested").inc()

    def answered(self, seconds: float) -> None:
        self.answer.observe(seconds)

    def allocated(self, parts: int) -> None:
        self.parts.observe(parts)

    def placed_again(self, parts: int) -> None:
        self.resourced.inc(parts)

    def backlog(self, open_orders: int, oldest_waiting: float) -> None:
        self.open.set(open_orders)
        self.waiting_oldest.set(oldest_waiting)
