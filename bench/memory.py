"""The processor's resident memory while a catalogue of many distinct keys flows through.

One member drains a workload over `keys` distinct keys (their opening stock and thresholds,
then a stream over all of them); its RSS (/proc) and its cache's entry count (/metrics) are
sampled every half second. The cache is bounded by STOCKFLOW_CACHE_MAX_ENTRIES.
"""

from __future__ import annotations

import signal
import statistics
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from common import committed, end_offsets, env_of, prepare, publish, say, settings_for, spawn

from stockflow.adapters.settings import Settings
from stockflow.devtools.localenv import free_port
from stockflow.devtools.workload import generate


@dataclass(frozen=True)
class Memory:
    keys: int
    events: int
    bound: int  # cache entries allowed
    peak_entries: int  # the most the cache held at a sample
    peak_rss: int  # bytes
    steady_rss: int  # median of the second half of the samples, bytes


def measure(base: Settings, *, keys: int, events: int, partitions: int,
            cache_max_entries: int | None = None) -> Memory:
    s = settings_for(base, "mem")
    topics = prepare(s, partitions)
    wl = generate(events=events, skus=max(1, keys // 3), warehouses=3, seed=11)
    say(f"  memory: publishing {len(wl.setup) + len(wl.stream):,} events over "
        f"{len(wl.keys):,} keys")
    publish(s, topics, wl.setup + wl.stream)
    target = end_offsets(s, topics)
    port = free_port()
    bound = cache_max_entries or Settings().cache_max_entries
    extra = {"STOCKFLOW_METRICS_PORT": str(port), "STOCKFLOW_CACHE_MAX_ENTRIES": str(bound)}
    proc = spawn([sys.executable, "-m", "stockflow", "process"], env_of(s, **extra))
    rss: list[int] = []
    entries = 0
    try:
        last_print = 0.0
        while (done := committed(s, topics)) < target:
            if proc.poll() is not None:
                raise SystemExit("memory: the processor exited early")
            rss.append(_rss(proc.pid))
            entries = max(entries, _cache_entries(port))
            if time.monotonic() - last_print > 5:
                say(f"  memory: {done:,}/{target:,} committed, RSS {rss[-1] / 2**20:,.0f} MiB,"
                    f" cache {entries:,} entries at most")
                last_print = time.monotonic()
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    half = rss[len(rss) // 2:] or [0]
    return Memory(len(wl.keys), len(wl.stream), bound, entries, max(rss or [0]),
                  int(statistics.median(half)))


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _cache_entries(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("stockflow_cache_entries "):
                    return int(float(line.split()[1]))
    except OSError:
        pass
    return 0
