"""aiokafka's connection errors (the relay's Kafka client), told as an outage instead of
line by line: aiokafka logs every failed attempt, some 80 lines a second during a broker
outage. Its records of those errors go to a `BrokerWatch`, which counts them and says the
outage once; everything else aiokafka logs passes untouched."""

from __future__ import annotations

import logging

from stockflow.adapters.broker_watch import BrokerWatch

__all__ = ["tell_errors_to"]

_UNREACHABLE = "all_brokers_down"
# (logger, message format) of each error -> its `kind`. Metadata that no broker would give
# is aiokafka's nearest to librdkafka's "all brokers down".
_KINDS = {
    ("aiokafka", "Unable to update metadata from %s"): _UNREACHABLE,
    ("aiokafka", 'Unable connect to "%s:%s": %s'): "transport",
    ("aiokafka", "Unable connect to node with id %s: %s"): "transport",
    ("aiokafka", 'Unable to request metadata from "%s:%s": %s'): "transport",
    ("aiokafka", "Unable to request metadata from node with id %s: %r"): "transport",
    ("aiokafka.consumer.fetcher", "Failed fetch messages from %s: %s"): "transport",
    ("aiokafka.consumer.fetcher", "Failed fetch offsets from %s: %s"): "transport",
    ("aiokafka.consumer.group_coordinator", "Group Coordinator Request failed: %s"):
        "coordinator",
    ("aiokafka.consumer.group_coordinator",
     "Error sending %s to node %s [%s] -- marking coordinator dead"): "transport",
    ("aiokafka.consumer.group_coordinator",
     "Marking the coordinator dead (node %s)for group %s."): "coordinator",
    ("aiokafka.consumer.group_coordinator",
     "Heartbeat session expired - marking coordinator dead"): "coordinator",
    ("aiokafka.consumer.group_coordinator", "Heartbeat send request failed: %s. Will retry."):
        "transport",
    ("aiokafka.consumer.group_coordinator", "Heartbeat failed for group %s: coordinator "
     "(node %s) is either not started or not valid"): "coordinator",
    ("aiokafka.producer.sender", "FindCoordinator Request failed: %s"): "coordinator",
    ("aiokafka.producer.sender", "Cannot send %r to %s: %r"): "transport",
}


class _ToWatch(logging.Filter):
    def __init__(self, watch: BrokerWatch) -> None:
        super().__init__()
        self.watch = watch

    def filter(self, record: logging.LogRecord) -> bool:
        kind = _KINDS.get((record.name, record.msg)) if isinstance(record.msg, str) else None
        if kind is None:
            return True
        if kind == _UNREACHABLE:
            self.watch.unreachable(kind, record.getMessage())
        else:
            self.watch.failed(kind, record.getMessage())
        return False


def tell_errors_to(watch: BrokerWatch) -> None:
    """From now on, aiokafka's connection errors go to `watch`, not to the log."""
    to_watch = _ToWatch(watch)
    for name in {name for name, _ in _KINDS}:
        logging.getLogger(name).addFilter(to_watch)
