"""The CPU cost of step 1 (decide) per event, without Postgres or Kafka.

    .venv/bin/python bench/decide.py [--events 60000] [--batch 100] [--repeat 7] [--profile]
                                     [--oversell-remediation release_newest_pending]

Deciding runs on the processor's consuming thread and is most of its CPU (per-thread CPU
at 5,000 events/s offered: about 0.34 core each member's main thread, 0.07 its writer).
This times exactly that step on the benchmark's generated workload: parsing, the rules,
the outputs' messages and outbox framing, with the processor's garbage-collector settings
and a database that has nothing committed yet. It prints the best and the median of
`--repeat` passes (this machine is noisy), in microseconds per event.
`bench/instructions.py` counts the same pass in instructions, which do not move with the
machine.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections.abc import Iterator

from stockflow.adapters.db import store
from stockflow.contract.topics import Topics
from stockflow.devtools.workload import generate
from stockflow.domain.inputs import Limits
from stockflow.domain.state import Policy, Remediation
from stockflow.engine.batch import Consumed, Prepared
from stockflow.engine.cache import StateCache
from stockflow.engine.stock import prepare
from stockflow.entrypoints.app import tune_gc


def _nothing_committed(_conn: object, **_wanted: object) -> store.Fetched:
    return store.Fetched({}, {}, {}, set())


def workload(events: int) -> tuple[list[Consumed], int]:
    """The generated workload (its setup, then its stream) as consumed messages and how
    many of them are the setup's, with the store stubbed to have nothing committed and the
    processor's garbage-collector settings: call once per process."""
    wl = generate(events=events, skus=1000, warehouses=3, seed=5)
    topics = Topics()
    store.fetch = _nothing_committed  # type: ignore[assignment]
    tune_gc()
    return [Consumed(topics.name(it.kind), hash(it.key) % 6, offset, it.key, it.value)
            for offset, it in enumerate(wl.setup + wl.stream)], len(wl.setup)


def decided(batch: list[Consumed], size: int, policy: Policy,
            cache: StateCache | None = None) -> Iterator[Prepared]:
    """One pass of step 1 over `batch` in batches of `size` (by default from an empty
    cache): each batch's result, which the caller may drop at once (as the processor's
    writer does)."""
    topics, limits = Topics(), Limits()
    cache = cache or StateCache(policy, 10**9)
    for i in range(0, len(batch), size):
        yield prepare(None, cache, batch[i:i + size],  # type: ignore[arg-type]
                      topics=topics, policy=policy, limits=limits, positions={})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--batch", type=int, default=100, help="messages per batch")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    ap.add_argument("--oversell-remediation", type=Remediation, choices=list(Remediation),
                    default=Policy().oversell_remediation, help="the rules' policy")
    args = ap.parse_args()

    batch, _ = workload(args.events)
    policy = Policy(oversell_remediation=args.oversell_remediation)

    def one_pass() -> float:
        started = time.perf_counter()
        for _ in decided(batch, args.batch, policy):
            pass
        return (time.perf_counter() - started) / len(batch) * 1e6

    one_pass()  # warm: imports, the parser's key table
    passes = sorted(one_pass() for _ in range(args.repeat))
    print(f"decide, us per event ({len(batch):,} messages in batches of {args.batch}): "
          f"best {passes[0]:.1f}, median {statistics.median(passes):.1f}")
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(one_pass)
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
