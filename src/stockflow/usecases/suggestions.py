"""Publish what a forecast suggests: `reorder.suggested` events for the keys with something
to order, and `stock.thresholds-set` where the reorder point is to follow demand."""

from __future__ import annotations

from datetime import UTC, date, datetime

from stockflow.adapters.publisher import Publisher
from stockflow.adapters.settings import Settings
from stockflow.contract.emit import Message, output_message
from stockflow.contract.events import envelope
from stockflow.contract.outputs import ReorderSuggested
from stockflow.contract.topics import Topics
from stockflow.domain.effects import Output
from stockflow.usecases.forecasting import Planned

__all__ = ["publish_suggestions"]


def _suggestion_message(topics: Topics, key: str, as_of: date, p: Planned, now: str,
                        ) -> Message:
    sku, _, warehouse = key.partition("@")
    s = p.suggestion
    data = ReorderSuggested(
        sku=sku, warehouse=warehouse, as_of=as_of, model=p.forecast.model,
        lead_time_days=s.lead_time_days, review_days=s.review_days,
        service_level=s.service_level, lead_time_demand=s.lead_time_demand,
        safety_stock=s.safety_stock, reorder_point=s.reorder_point,
        order_up_to=s.order_up_to, on_hand=p.position.on_hand,
        available=p.position.available, in_transit=p.position.in_transit,
        on_order=p.position.on_order,
        position=s.position, suggested_quantity=s.suggested_quantity,
    ).model_dump(mode="json")
    # the same suggestion made again the same day carries the same id: de-duplicable
    line = f"{s.reorder_point}/{s.order_up_to}/{s.suggested_quantity}"
    return output_message(topics, f"forecast/{key}/{as_of.isoformat()}",
                          Output("reorder.suggested", key, line, data), now)


def publish_suggestions(settings: Settings, planned: dict[str, Planned], as_of: date, *,
                        suggestions: bool, thresholds: bool) -> tuple[int, int]:
    """Suggestions (where there is something to order) and reorder points (where they
    change), all in one Kafka transaction; (suggestions, thresholds) sent. The keys'
    safety stock is left as it is: in the contract it holds units back from sale, which
    is not what a forecast's safety stock means."""
    topics, now = Topics(settings.topic_prefix), datetime.now(UTC).isoformat()
    messages, counts = [], [0, 0]
    with Publisher(settings, source="stockflow-forecast") as pub:
        for key, p in planned.items():
            if suggestions and p.suggestion.suggested_quantity > 0:
                messages.append(_suggestion_message(topics, key, as_of, p, now))
                counts[0] += 1
            wanted = p.suggestion.reorder_point
            if thresholds and wanted != p.position.reorder_point:
                sku, _, warehouse = key.partition("@")
                messages.append(pub.prepare(envelope(
                    "stock.thresholds-set",
                    {"sku": sku, "warehouse": warehouse, "reorder_point": wanted,
                     "safety_stock": p.position.safety_stock},
                    id_=f"forecast/{key}/{as_of.isoformat()}/reorder-point/{wanted}",
                    source=pub.source)))
                counts[1] += 1
        if messages:
            pub.transact(messages)
    return counts[0], counts[1]
