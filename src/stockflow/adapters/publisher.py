"""The publisher library for order services and warehouse systems.

It builds CloudEvents envelopes and `SKU@WAREHOUSE` keys, validates every event with the
processor's own parser before sending (so a bad event fails here, with the DLQ reason it
would get), publishes through an idempotent producer with Java's murmur2 partitioner, and
publishes the lines of one order atomically in one Kafka transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from confluent_kafka import KafkaException, Producer

from stockflow import StockflowError
from stockflow.adapters.broker_watch import BrokerWatch
from stockflow.adapters.kafka import DeliveryFailures, produce_all, producer
from stockflow.adapters.settings import Settings
from stockflow.contract.emit import Message
from stockflow.contract.events import (
    INPUT_MODELS,
    ORDER_INPUT_MODELS,
    Reason,
    Rejection,
    envelope,
    parse,
    parse_order_input,
    split_key,
)
from stockflow.contract.topics import TopicKind, Topics
from stockflow.domain.inputs import Event, Limits

# what order services send the coordinator (the reservation events it reads are ours)
ORDER_REQUEST_TYPES = frozenset(t for t, (kind, _) in ORDER_INPUT_MODELS.items()
                                if kind is TopicKind.ORDER_REQUESTS)

__all__ = ["PublishError", "Publisher", "envelope", "prepare", "prepare_order_request"]


class PublishError(StockflowError):
    """An event the processor would reject, or one Kafka did not accept."""

    def __init__(self, message: str, reason: Reason | None = None) -> None:
        super().__init__(message)
        self.reason = reason


def _key_of(doc: Mapping[str, Any]) -> str:
    data = doc.get("data") or {}
    if isinstance(data, Mapping) and data.get("sku") and data.get("warehouse"):
        return f"{data['sku']}@{data['warehouse']}"
    subject = doc.get("subject")
    if isinstance(subject, str) and split_key(subject):
        return subject
    raise PublishError("event names no sku and warehouse, and no SKU@WAREHOUSE subject",
                       Reason.KEY_MISMATCH)


def prepare(doc: Mapping[str, Any], topics: Topics, limits: Limits,
            key: str | None = None) -> Message:
    """The message for an envelope, validated exactly as the processor (or, for an order
    request, the coordinator) will parse it, or PublishError with the DLQ reason it would
    get."""
    type_ = doc.get("type")
    if type_ in ORDER_REQUEST_TYPES:  # a whole order's, for the coordinator
        return prepare_order_request(doc, topics, limits)
    known = INPUT_MODELS.get(type_) if isinstance(type_, str) else None
    if known is None:
        raise PublishError(f"unknown event type {type_!r}", Reason.UNKNOWN_TYPE)
    kind = known[0]
    raw_key = (key or _key_of(doc)).encode()
    value = json.dumps(doc, separators=(",", ":"), default=str).encode()
    got = parse(kind, raw_key, value, limits)
    if isinstance(got, Rejection):
        raise PublishError(f"{got.reason.value}: {got.message}", got.reason)
    assert isinstance(got, Event)
    return Message(topics.name(kind), raw_key, value)


def prepare_order_request(doc: Mapping[str, Any], topics: Topics, limits: Limits) -> Message:
    """The message for an order request (keyed by its order_id), validated exactly as the
    coordinator will parse it, or PublishError with the DLQ reason it would get."""
    data = doc.get("data") or {}
    order_id = data.get("order_id") if isinstance(data, Mapping) else None
    if not isinstance(order_id, str):
        raise PublishError("an order request names its order_id", Reason.SCHEMA_VIOLATION)
    value = json.dumps(doc, separators=(",", ":"), default=str).encode()
    got = parse_order_input(TopicKind.ORDER_REQUESTS, order_id.encode(), value, limits)
    if isinstance(got, Rejection):
        raise PublishError(f"{got.reason.value}: {got.message}", got.reason)
    return Message(topics.name(TopicKind.ORDER_REQUESTS), order_id.encode(), value)


class Publisher:
    """Validates events as the processor would and publishes them: `publish` one event,
    `publish_order` the lines of one order atomically, whole orders for the coordinator
    (`request_order`, `confirm_order`, `cancel_order`), `flush` to wait for delivery (it
    raises PublishError for what Kafka did not take). A context manager: leaving it
    flushes."""

    def __init__(self, settings: Settings, *, source: str = "stockflow-publisher",
                 transactional_id: str | None = None, watch: BrokerWatch | None = None) -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self.source = source
        self._watch = watch  # told of the producers' errors; None: the process's shared one
        self._failures = DeliveryFailures()
        self._producer = producer(settings, self._failures.config(), watch)
        self._tx_id = transactional_id or f"{settings.client_id}-publisher-{uuid.uuid4().hex}"
        self._tx: Producer | None = None

    def prepare(self, doc: Mapping[str, Any], key: str | None = None) -> Message:
        """The message for an envelope, or PublishError with the reason it would get."""
        return prepare(doc, self.topics, self.settings.limits(), key)

    def publish(self, type_: str, data: Mapping[str, Any], *, id_: str | None = None,
                time: datetime | None = None, key: str | None = None) -> str:
        """Validate and send one event; returns its id. Call `flush()` to wait for delivery."""
        doc = envelope(type_, data, id_=id_, time=time, source=self.source)
        self.send(doc, key=key)
        return str(doc["id"])

    def send(self, doc: Mapping[str, Any], *, key: str | None = None) -> None:
        """Validate and send one envelope (keyed by `key` when given); `flush()` waits for
        delivery."""
        produce_all(self._producer, [self.prepare(doc, key)])

    def publish_order(self, order_id: str, lines: Iterable[Mapping[str, Any]], *,
                      time: datetime | None = None, expires_at: datetime | None = None,
                      timeout: float = 30.0) -> list[str]:
        """Publish order.placed for every line of one order in one Kafka transaction:
        consumers reading committed data see all lines or none."""
        docs = []
        lines = list(lines)
        for i, line in enumerate(lines, 1):
            data = {"order_id": order_id, "line_id": str(line.get("line_id", i)),
                    "line_count": len(lines), **line}
            if expires_at is not None:
                data.setdefault("expires_at", expires_at.isoformat())
            ident = f"{order_id}/{data['line_id']}/placed"
            docs.append(envelope("order.placed", data, id_=ident, time=time, source=self.source))
        self.send_atomically(docs, timeout=timeout)
        return [str(d["id"]) for d in docs]

    def request_order(self, order_id: str, lines: Iterable[Mapping[str, Any]], *,
                      strategy: str | None = None, ship_to: Mapping[str, float] | None = None,
                      expires_at: datetime | None = None, time: datetime | None = None) -> str:
        """Hand the order coordinator a whole order (`lines`: line_id, sku, quantity and an
        optional warehouse to pin it to): it allocates every line or reserves nothing, and
        says which on `inventory.order-status`. The id is the order's, so publishing the
        same order again is a duplicate. Returns the id; `flush()` waits for delivery."""
        data: dict[str, Any] = {"order_id": order_id, "lines": [dict(ln) for ln in lines]}
        if strategy is not None:
            data["strategy"] = strategy
        if ship_to is not None:
            data["ship_to"] = dict(ship_to)
        if expires_at is not None:
            data["expires_at"] = expires_at.isoformat()
        return self._order_request("order.requested", data, time)

    def confirm_order(self, order_id: str, *, time: datetime | None = None) -> str:
        """Confirm every part of an order (held until the order is allocated)."""
        return self._order_request("order.confirm-requested", {"order_id": order_id}, time)

    def cancel_order(self, order_id: str, *, reason: str | None = None,
                     time: datetime | None = None) -> str:
        """Release every part of an order (remembered if the order has not come yet)."""
        data: dict[str, Any] = {"order_id": order_id}
        if reason is not None:
            data["reason"] = reason
        return self._order_request("order.cancel-requested", data, time)

    def _order_request(self, type_: str, data: Mapping[str, Any],
                       time: datetime | None) -> str:
        ident = f"{data['order_id']}/{type_.removeprefix('order.')}"
        doc = envelope(type_, data, id_=ident, time=time, source=self.source)
        produce_all(self._producer, [prepare_order_request(doc, self.topics,
                                                           self.settings.limits())])
        return ident

    def send_atomically(self, docs: Iterable[Mapping[str, Any]], *,
                        timeout: float = 30.0) -> None:
        """Validate every envelope, then send them all in one Kafka transaction: all are
        valid and sent, or PublishError and nothing is. Not for concurrent callers."""
        self.transact([self.prepare(d) for d in docs], timeout=timeout)

    def transact(self, messages: Sequence[Message], *, timeout: float = 30.0,
                 progress: Callable[[int], None] | None = None) -> None:
        """Send prepared messages in one Kafka transaction: all or none. `progress` hears
        how many more were handed to the producer, every few thousand. Not for concurrent
        callers."""
        tx = self._transactional()
        tx.begin_transaction()
        try:
            step = 5000
            for start in range(0, len(messages), step):
                produce_all(tx, messages[start:start + step])
                if progress is not None:
                    progress(len(messages[start:start + step]))
            tx.commit_transaction(timeout)
        except Exception:
            self._abort(tx, timeout)
            raise

    def _abort(self, tx: Producer, timeout: float) -> None:
        """Abort the transaction in hand, or else give up the producer. A commit that timed
        out while the brokers were away goes on in the background, and librdkafka refuses
        an abort meanwhile (_CONFLICT), then every later transaction of this producer: after
        an outage longer than the commit's timeout, every write failed until the process
        was restarted (the API's with 503). A new producer with the same transactional id
        fences the old one, and its init_transactions settles what the old one left open."""
        try:
            tx.abort_transaction(timeout)
        except KafkaException:
            self._tx = None

    def ready_transactions(self, timeout: float = 30.0) -> None:
        """Register the transactional producer with the broker now (it takes a few hundred
        milliseconds), not on the first atomic send."""
        self._transactional(timeout)

    def _transactional(self, timeout: float = 30.0) -> Producer:
        if self._tx is None:
            tx = producer(self.settings, {"transactional.id": self._tx_id}, self._watch)
            tx.init_transactions(timeout)  # if this fails, the next call starts afresh
            self._tx = tx
        return self._tx


    def flush(self, timeout: float = 60.0) -> None:
        """Wait for every event sent to be delivered; PublishError when some were not."""
        left = self._producer.flush(timeout)
        errors = self._failures.take()
        if left or errors:
            raise PublishError(f"{left} events undelivered; failures: {errors[:5]}")

    def close(self) -> None:
        """Flush, then close the producer."""
        self.flush()
        if self._tx is not None:
            self._tx.flush(30)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
