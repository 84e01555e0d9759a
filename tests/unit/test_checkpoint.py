"""The cache and the checkpoint decide exactly as plain `apply` over whole states.

The cache hands each event only the reservation lines of its order and the movement
references it names (what `order_of` and `references_of` say it reads). Generated streams,
cut into batches of random sizes, must give the same outcomes, outputs and final states
through `prepare` as through `apply` on states that hold everything.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockflow.adapters.kafka import DeliveryFailures
from stockflow.contract.emit import Message, output_id
from stockflow.contract.events import Rejection, parse
from stockflow.contract.topics import Topics
from stockflow.devtools.workload import Item, generate
from stockflow.domain.effects import Outcome
from stockflow.domain.inputs import DEFAULT_LIMITS
from stockflow.domain.rules import apply
from stockflow.domain.state import Policy, Remediation, StockState, new_state
from stockflow.engine.batch import Consumed
from stockflow.engine.cache import StateCache
from stockflow.engine.checkpoint import Checkpoint
from stockflow.engine.failures import EmitError, Failure, classify
from stockflow.engine.stock import prepare

POLICY = Policy()
# the cache hands a movement its key's pending lines only with remediation on
POLICIES = [POLICY, Policy(oversell_remediation=Remediation.RELEASE_NEWEST_PENDING)]
TOPICS = Topics()


class _EmptyDatabase:
    """Postgres as a member finds it before its first batch: nothing stored. Whatever the
    cache fetched once it keeps, so later batches must be decided from the cache alone."""

    def pipeline(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def execute(self, *_: object) -> _EmptyDatabase:
        return self

    def fetchall(self) -> list[Any]:
        return []


def _plain(items: list[Item], policy: Policy = POLICY,
           ) -> tuple[Counter[tuple[str, str]], list[Any], dict[str, Any]]:
    """Outcomes, outputs and final states from `apply` on whole states."""
    states: dict[str, StockState] = {}
    seen: set[str] = set()
    outcomes: Counter[tuple[str, str]] = Counter()
    outputs: list[Any] = []
    for it in items:
        ev = parse(it.kind, it.key, it.value, DEFAULT_LIMITS)
        if isinstance(ev, Rejection):
            outcomes[(ev.event_type or "unknown", "rejected")] += 1
            outputs.append(("dlq", ev.reason.value))
            continue
        if ev.id in seen:
            outcomes[(ev.type, "duplicate")] += 1
            continue
        state = states.get(ev.key) or new_state(ev.sku, ev.warehouse, policy)
        d = apply(state, ev, policy)
        if d.outcome is Outcome.REJECTED:
            outcomes[(ev.type, "rejected")] += 1
            outputs.append(("dlq", "negative_result"))
            continue
        seen.add(ev.id)
        states[ev.key] = d.state
        outcomes[(ev.type, d.outcome.value)] += 1
        outputs += [(output_id(ev.id, o.type, o.line), json.loads(json.dumps(o.data)))
                    for o in d.outputs]
    return outcomes, outputs, {k: _figures(s) for k, s in states.items()}


def _figures(s: StockState) -> tuple[Any, ...]:
    return (s.qty, s.version, s.reorder_point, s.safety_stock, s.severity)


def _through_the_checkpoint(items: list[Item], cuts: list[int], policy: Policy = POLICY,
                            ) -> tuple[Counter[tuple[str, str]], list[Any], dict[str, Any]]:
    cache = StateCache(policy, max_entries=100_000)
    msgs = [Consumed(TOPICS.name(it.kind), 0, i, it.key, it.value)
            for i, it in enumerate(items)]
    outcomes: Counter[tuple[str, str]] = Counter()
    outputs: list[Any] = []
    positions: dict[tuple[str, int], int] = {}
    start = 0
    for size in [*cuts, len(msgs)]:
        batch, start = msgs[start:start + size], start + size
        if not batch:
            continue
        prepared = prepare(_EmptyDatabase(), cache, batch, topics=TOPICS,  # type: ignore[arg-type]
                           policy=policy, limits=DEFAULT_LIMITS, positions=positions)
        positions.update({tp: nxt for tp, (_, nxt) in prepared.offsets.items()})
        for (_, type_, outcome), n in prepared.report.events.items():  # summed over topics
            outcomes[(type_, outcome)] += n
        for m in prepared.messages:  # one partition: consume order is kept
            headers = dict(m.headers)
            if "stockflow.error.reason" in headers:
                outputs.append(("dlq", headers["stockflow.error.reason"].decode()))
            else:
                doc = json.loads(m.value or b"")
                outputs.append((doc["id"], doc["data"]))
    return outcomes, outputs, {k: _figures(s) for k, s in cache.states.items()}


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.oversell_remediation.value)
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 400), max_size=12))
def test_cache_and_checkpoint_decide_as_plain_apply(policy: Policy, seed: int,
                                                    cuts: list[int]) -> None:
    wl = generate(events=1_500, skus=6, warehouses=2, seed=seed)
    items = wl.setup + wl.stream
    outcomes, outputs, states = _through_the_checkpoint(items, cuts, policy)
    want_outcomes, want_outputs, want_states = _plain(items, policy)
    assert outcomes == want_outcomes
    # a batch's edge rejections go out ahead of its decisions; decisions keep their order
    assert [o for o in outputs if o[0] != "dlq"] == [o for o in want_outputs if o[0] != "dlq"]
    assert Counter(o for o in outputs if o[0] == "dlq") == \
        Counter(o for o in want_outputs if o[0] == "dlq")
    assert {k: v for k, v in states.items() if k in want_states} == want_states


class _Producer:
    """A producer whose flush leaves `stuck` messages undelivered."""

    def __init__(self, stuck: int = 0) -> None:
        self.sent: list[tuple[str, bytes | None]] = []
        self.stuck = stuck

    def produce(self, topic: str, value: bytes | None, *_: object, **__: object) -> None:
        self.sent.append((topic, value))

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return self.stuck


def _checkpoint(producer: _Producer, stop: bool = False) -> Checkpoint:
    flag = threading.Event()
    if stop:
        flag.set()
    return Checkpoint(store=None, producer=producer,  # type: ignore[arg-type]
                      failures=DeliveryFailures(), flush_timeout=0.05, stop=flag)


def test_step_3_emits_or_says_what_was_not_delivered() -> None:
    messages = [Message("t", b"k", b"v1"), Message("t", b"k", b"v2")]
    fine = _Producer()
    _checkpoint(fine).emit(messages)
    assert fine.sent == [("t", b"v1"), ("t", b"v2")]
    for stuck in (_checkpoint(_Producer(stuck=2)), _checkpoint(_Producer(stuck=2), stop=True)):
        with pytest.raises(EmitError, match="2 outputs undelivered") as caught:
            stuck.emit(messages)
        assert classify(caught.value) is Failure.OUTAGE  # waited out, never dead-lettered
