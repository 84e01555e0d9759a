"""stockflow benchmark: one command, prints figures and ratios.

    .venv/bin/python bench/run.py [--events 100000] [--rates 1000,5000,10000,15000]
                                  [--parts throughput,naive,peer,ceiling,latency,memory]

1. Throughput: a generated workload is published up front, then `stockflow process`
   (one child process per core) drains it end to end: consumed -> committed in Postgres ->
   outputs flushed. Measured from the first commit once the group is stable (joining is
   start-up, not throughput) to the last commit.
2. The naive baseline (bench/naive.py: one transaction per event) on the same workload.
3. The peer (bench/peer_faust.py: the same rules in a faust-streaming app with a faust
   Table and a batched Postgres sink) on the same workload.
4. The I/O ceiling (bench/ceiling.py): the same messages consumed and produced again with no
   processing, and the rows a drain wrote COPYed into Postgres; stockflow's share of each.
5. Latency (bench/latency.py): events offered at fixed rates; publish -> `stock.changed`
   and -> `reservation.accepted` readable, p50/p95/p99, and where a batch's time went; at
   `--reference-rate`, the same for the latency floor (bench/floor.py: the same Kafka and
   durable-commit path with no processing) and for the peer.
6. Memory (bench/memory.py): one member's RSS while 200,000 distinct keys flow.
Postgres runs with its durable defaults (fsync and synchronous_commit on); Kafka,
Postgres, the processes under test and this driver share the machine's cores.
The terminal shows progress and figures; what the processes under test and the Kafka
clients log (librdkafka's lines among it) goes to the log file named at the start
(`--log`). SIGTERM stops a run as Ctrl-C does: its children stop, then its services.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import ceiling
import latency
import memory
from common import (
    ROOT,
    Drained,
    close_clients,
    committed_in_kafka,
    cpu_line,
    drain,
    log_to,
    pct,
    postgres_durability,
    prepare,
    publish,
    say,
    settings_for,
)
from pydantic import SecretStr

from stockflow.adapters.observer import STAGES
from stockflow.adapters.settings import Settings
from stockflow.contract.topics import Topics
from stockflow.devtools.localenv import local_services
from stockflow.devtools.workload import Item, Workload, generate

PROCESSOR = [sys.executable, "-m", "stockflow", "process"]
NAIVE = [sys.executable, str(ROOT / "bench" / "naive.py")]
PEER = [sys.executable, str(ROOT / "bench" / "peer_faust.py")]
FLOOR = [sys.executable, str(ROOT / "bench" / "floor.py")]
PARTS = ("throughput", "naive", "peer", "ceiling", "latency", "memory")


@dataclass
class Run:
    """One benchmark run: the services, the workload and what was measured so far."""

    args: argparse.Namespace
    base: Settings
    items: list[Item]
    wl: Workload
    sf_rate: float = 0.0
    drained: tuple[Settings, Topics] | None = None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--skus", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--naive-events", type=int, default=20_000,
                    help="events of the same workload the naive baseline drains")
    ap.add_argument("--members", type=int, default=os.cpu_count() or 1,
                    help="processes in each consumer group (default: one per core)")
    ap.add_argument("--repeat", type=int, default=3, help="measured stockflow drains")
    ap.add_argument("--warmup", type=float, default=60,
                    help="seconds of load at 3,000 events/s before measuring (0: none)")
    ap.add_argument("--rates", default="1000,5000,10000,15000",
                    help="offered rates for the latency curve, events/s")
    ap.add_argument("--reference-rate", type=int, default=5000,
                    help="offered rate for the latency floor and the peer (0: neither)")
    ap.add_argument("--seconds", type=float, default=15, help="per latency point")
    ap.add_argument("--settle", type=float, default=10,
                    help="seconds at a latency point's rate before it is measured (fresh "
                    "processes on fresh topics); their latencies are printed apart")
    ap.add_argument("--memory-keys", type=int, default=200_000)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"of {', '.join(PARTS)}")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a checkout of another commit (e.g. a `git worktree`): its processor "
                    "drains too, alternating with this one's, --repeat times each")
    ap.add_argument("--log", type=Path, default=None,
                    help="the log file (default: build/bench/run-TIME.log)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if unknown := parts - set(PARTS):
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as on Ctrl-C
    log = args.log or ROOT / "build" / "bench" / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log_to(log)
    say(f"logs: {log}")
    try:
        out = _run(args, parts)
    except KeyboardInterrupt:
        say("stopped")
        return 130
    print("\n".join(out))
    return 0


def _run(args: argparse.Namespace, parts: set[str]) -> list[str]:
    with local_services() as found:
        base = Settings(kafka_bootstrap=found.kafka_bootstrap,
                        database_url=SecretStr(found.database_url))
        wl = generate(events=args.events, skus=args.skus, warehouses=3, seed=3)
        run = Run(args, base, wl.setup + wl.stream, wl)
        out = ["stockflow benchmark",
               f"  machine: {os.cpu_count()} cores; broker, Postgres, the processes under "
               "test and this driver on it",
               f"  postgres: {postgres_durability(base)} (durable defaults)",
               f"  workload: {len(wl.stream):,} events, {len(wl.keys):,} keys, "
               f"{args.partitions} partitions; {args.members} member(s) per group"]
        try:
            if args.warmup:
                _warm_up(run)
            if "throughput" in parts or "ceiling" in parts:
                out += _throughput(run)
            if "naive" in parts:
                out += _naive(run)
            if "peer" in parts:
                out += _peer(run)
            if "ceiling" in parts:
                out += _ceiling(run)
            if "latency" in parts:
                out += _latency(run, with_peer="peer" in parts)
            if "memory" in parts:
                out += _memory(run)
        finally:
            close_clients()  # before the services stop: no client left to retry them
    return out


def _warm_up(run: Run) -> None:
    # A freshly started broker spends up to half a core compiling for its first ~50 s of
    # load (its JIT compiler threads, measured from /proc); measure the steady state, as a
    # long-running service would see it, through the same paths the parts use.
    args = run.args
    say(f"warm-up: {args.warmup:.0f}s at 3,000/s (not measured)")
    latency.measure(PROCESSOR, run.base, label="warm", rate=3000, seconds=args.warmup,
                    skus=args.skus, partitions=args.partitions, members=args.members)


def _throughput(run: Run) -> list[str]:
    args = run.args
    runs: list[Drained] = []
    base_runs: list[Drained] = []
    for rep in range(1, args.repeat + 1):
        # with a baseline, alternate which goes first: a drift of the machine hits both
        for which in (("this", "baseline") if rep % 2 else ("baseline", "this")):
            if which == "baseline" and args.baseline is None:
                continue
            s = settings_for(run.base, "sf")
            topics = prepare(s, args.partitions)
            publish(s, topics, run.items)
            say(f"{which}: draining (run {rep} of {args.repeat})")
            if which == "this":
                runs.append(drain(PROCESSOR, s, topics, "stockflow", members=args.members))
                run.drained = (s, topics)
            else:
                base_runs.append(drain(
                    PROCESSOR, s, topics, "baseline", members=args.members,
                    extra_env={"PYTHONPATH": str(args.baseline.resolve() / "src")}))
    run.sf_rate = statistics.median(r.rate for r in runs)
    out = ["throughput, events/s (published up front, drained end to end)",
           f"  stockflow        {run.sf_rate:>9,.0f}  median of "
           f"{', '.join(f'{r.rate:,.0f}' for r in runs)}; with group start-up "
           f"{statistics.median(r.whole for r in runs):,.0f}"]
    if base_runs:
        base = statistics.median(r.rate for r in base_runs)
        out.append(f"  baseline         {base:>9,.0f}  median of "
                   f"{', '.join(f'{r.rate:,.0f}' for r in base_runs)} ({args.baseline}); "
                   f"this / baseline {run.sf_rate / base:.3f}")
    out += [f"    {label} {r.rate:,.0f}/s: {cpu_line(r.cpu)}; {r.postgres}"
            for label, drained in (("stockflow", runs), ("baseline", base_runs))
            for r in drained]
    return out


def _naive(run: Run) -> list[str]:
    n = settings_for(run.base, "naive")
    topics = prepare(n, run.args.partitions)
    publish(n, topics, run.wl.setup + run.wl.stream[:run.args.naive_events])
    say("naive baseline: draining")
    naive = drain(NAIVE, n, topics, "naive", committed_in_kafka)
    return [f"  naive baseline   {naive.rate:>9,.0f}  ({naive.events:,} events); "
            f"stockflow {_ratio(run.sf_rate, naive.rate)}"]


def _peer(run: Run) -> list[str]:
    p = settings_for(run.base, "peer")
    topics = prepare(p, run.args.partitions)
    publish(p, topics, run.items)
    say("peer (faust-streaming): draining")
    peer = drain(PEER, p, topics, "peer", committed_in_kafka, members=run.args.members)
    return [f"  peer (faust)     {peer.rate:>9,.0f}  ({peer.events:,} events, "
            f"{run.args.members} worker(s)); stockflow {_ratio(run.sf_rate, peer.rate)}"]


def _ceiling(run: Run) -> list[str]:
    if run.drained is None:
        return []
    s, topics = run.drained
    say("I/O ceiling: Kafka consume and produce, Postgres COPY")
    k = ceiling.kafka(run.base, s, topics, len(run.items))
    pg = ceiling.postgres(run.base, s, len(run.items))
    both = 1 / (1 / k.rate + 1 / pg.rate)
    sf = run.sf_rate
    # The driver is the ceiling's client (its consumer and producer, the COPY's sender):
    # it stands where the processors stand in a drain.
    return ["  I/O ceiling, no processing (stockflow's share):",
            f"    Kafka consume + produce   {k.rate:>9,.0f}  ({sf / k.rate:.0%})",
            f"      {cpu_line(k.cpu)}",
            f"    Postgres COPY of its rows {pg.rate:>9,.0f}  ({sf / pg.rate:.0%})",
            f"      {cpu_line(pg.cpu)}; {pg.postgres}",
            f"    both, one after the other {both:>9,.0f}  ({sf / both:.0%})"]


def _latency(run: Run, *, with_peer: bool) -> list[str]:
    args = run.args
    lines = ["latency, publish -> readable, ms   stock.changed p50/p95/p99 (events)   "
             "reservation.accepted p50/p95/p99 (events)"]
    curve = []
    for rate in [int(r) for r in args.rates.split(",") if r]:
        say(f"latency: stockflow at {rate:,}/s for {args.settle:.0f}s + {args.seconds:.0f}s")
        got = latency.measure(PROCESSOR, run.base, label="lat", rate=rate,
                              seconds=args.seconds, skus=args.skus, settle=args.settle,
                              partitions=args.partitions, members=args.members)
        say(f"latency: the offered load alone at {rate:,}/s for {args.seconds:.0f}s")
        got.alone = latency.offered_alone(run.base, rate=rate, seconds=args.seconds,
                                          skus=args.skus, partitions=args.partitions)
        curve.append(got)
        lines.append(_latency_line("stockflow", got))
        if args.settle > 0:
            lines.append(_latency_line(f"  its first {args.settle:.0f} s", got, started=True))
    references = ([("floor", FLOOR)] + ([("peer (faust)", PEER)] if with_peer else [])
                  if args.reference_rate > 0 else [])
    for label, cmd in references:
        say(f"latency: {label} at {args.reference_rate:,}/s for {args.settle:.0f}s + "
            f"{args.seconds:.0f}s")
        got = latency.measure(cmd, run.base, label=label.split()[0], rate=args.reference_rate,
                              seconds=args.seconds, skus=args.skus, settle=args.settle,
                              partitions=args.partitions, members=args.members,
                              ready=committed_in_kafka)
        lines.append(_latency_line(label, got))
        lines.append(f"    {_cpu_line(got)}")
    return lines + _breakdown(curve)


def _memory(run: Run) -> list[str]:
    keys = run.args.memory_keys
    say(f"memory: {keys:,} keys through one member")
    m = memory.measure(run.base, keys=keys, events=keys, partitions=run.args.partitions)
    return [f"memory, one member, {m.keys:,} distinct keys, {m.events:,} stream events: RSS "
            f"peak {m.peak_rss / 2**20:,.0f} MiB, steady {m.steady_rss / 2**20:,.0f} MiB; "
            f"cache at most {m.peak_entries:,} entries of a {m.bound:,} bound"]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


def _latency_line(label: str, got: latency.Latency, *, started: bool = False) -> str:
    def three(values: list[float]) -> str:
        if not values:
            return "    -/-/-"
        return "/".join(f"{pct(values, q) * 1000:,.0f}" for q in (.5, .95, .99))

    changed, accepted = ((got.started_changed, got.started_accepted) if started
                         else (got.changed, got.accepted))
    return (f"  {label} at {got.rate:>6,}/s (offered {got.achieved:,.0f}): "
            f"{three(changed):>16}  ({len(changed):,})   "
            f"{three(accepted):>16}  ({len(accepted):,})")


def _breakdown(curve: list[latency.Latency]) -> list[str]:
    lines = ["where a batch's time goes (mean ms per batch; queue: its first message, publish "
             "to consumed)"]
    for got in curve:
        total, batches = got.batch_messages
        means = {name: s / n for name, (s, n) in got.stages.items() if n}
        stages = "  ".join(f"{name} {means[name] * 1000:,.1f}" for name in STAGES
                           if name in means)
        pauses = sum(s for s, _ in got.gc.values())
        lines.append(f"  at {got.rate:>6,}/s: {stages}; {total / max(batches, 1):,.0f} "
                     f"messages per batch; GC paused {pauses * 1000:,.0f} ms in all")
        lines.append(f"    {_cpu_line(got)}")
        lines.append(f"    {got.postgres}")
    return lines


def _cpu_line(got: latency.Latency) -> str:
    offered = got.achieved * got.offered_seconds
    cpu = "  ".join(f"{role} {seconds / offered * 1e6:,.0f}"
                    for role, seconds in got.cpu.items() if seconds > 0)
    cores = sum(got.cpu.values()) / got.offered_seconds
    line = f"CPU per offered event, us: {cpu} ({cores:.2f} cores in all"
    if not got.alone:
        return line + ")"
    # What the load costs with nothing consuming it (its producer, here the driver, and
    # the broker taking it in) is the machine's whatever processes it: the rest is the
    # processors' doing, the broker's and Postgres's work for them included.
    alone = sum(got.alone.values())
    return (f"{line}; the offered load alone {alone:.2f}: broker {got.alone['broker']:.2f}, "
            f"driver {got.alone['driver']:.2f}; so processing {cores - alone:.2f})")


if __name__ == "__main__":
    raise SystemExit(main())
