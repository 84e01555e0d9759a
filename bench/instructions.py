"""Instructions per event of the hot path, counted by callgrind: figures that do not move
with the machine, so a change to the hot path is judged in one run on any day.

    .venv/bin/python bench/instructions.py [--events 4000] [--batch 100] [--baseline DIR]

Two regions, on bench/decide.py's generated workload and with no services:

- decide: `stockflow.engine.stock.prepare` over the workload's stream in batches of
  `--batch` (parsing, the rules, the outputs' messages, outbox framing), with nothing
  committed in the store and every key in the cache;
- commit formatting: what the writer does in Python with each of those batches' rows
  (`store.Writes`) before Postgres sees them: every step's parameters (the `unnest` array
  literals of the batch's one statement), given to a connection that only keeps them (a
  `--baseline` from before the one statement: its COPY rows, encoded by psycopg's own text
  formatter as a COPY would, and its statements' parameters).

A child process runs under `valgrind --tool=callgrind` with instrumentation off until the
regions begin (imports and the workload run about 5x slower than native, the regions
about 50x). It tells this driver on stdout when a region is about to begin and when it
has ended, and waits on stdin each time; the driver has callgrind zero its counters
before the region and dump them after it (`callgrind_control`), so each dump holds one
region. An empty region measured the same way (that handshake's own cost, about 20,000
instructions) is subtracted from each. PYTHONHASHSEED is fixed and the cyclic collector
starts each region empty, so two runs of one checkout agree within 0.05%; the same code in
two checkouts (other paths, another heap layout) differed by up to 0.9%: a change under 1%
is not told apart. The setup's keys and the first 1,000 stream events are decided (and their
rows formatted) before counting: the figures are a warm processor's, per stream message.
With `--baseline DIR` (a checkout of another commit, e.g. a `git worktree` of main), the
same child first measures that checkout's `src`, and both are printed with their ratio.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ("empty", "decide", "commit formatting")
WARM = 1000  # stream events decided and formatted before counting
_TOTAL = re.compile(rb"^(?:totals|summary): (\d+)", re.MULTILINE)
_TRIGGER = re.compile(rb"^desc: Trigger: dump (\S+)", re.MULTILINE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=4000,
                    help="stream events generated (the setup's come on top)")
    ap.add_argument("--batch", type=int, default=100, help="messages per batch")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a checkout of another commit: its src is measured first")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep callgrind's files here (a folder per checkout), to read with "
                    "callgrind_annotate")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        return _inside(args.events, args.batch)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    measured = []
    for label, src in ([("baseline", args.baseline / "src")] if args.baseline else []) + [
            ("this", ROOT / "src")]:
        print(f"counting {label} ({src}) under callgrind", file=sys.stderr, flush=True)
        keep = None
        if args.keep:
            keep = args.keep / label
            keep.mkdir(parents=True, exist_ok=True)
            for old in keep.glob("callgrind.out*"):
                old.unlink()
        measured.append((label, src, count(src, args.events, args.batch, keep)))
    messages = measured[-1][2]["messages"]
    print(f"instructions per event ({messages:,} messages in batches of {args.batch}, "
          "callgrind)")
    for label, src, got in measured:
        print(f"  {label:<9} decide {got['decide']:>9,.0f}   commit formatting "
              f"{got['commit formatting']:>7,.0f}   ({src})")
    if args.baseline:
        base, this = measured[0][2], measured[-1][2]
        print("  this / baseline: " + ", ".join(
            f"{region} {this[region] / base[region]:.3f}" for region in REGIONS[1:]))
    return 0


def count(src: Path, events: int, batch: int, keep: Path | None = None) -> dict[str, float]:
    """Instructions per message of each region, with `src` as the stockflow measured;
    callgrind's files are kept in `keep` when given (for callgrind_annotate)."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        out, log = Path(keep or tmp) / "callgrind.out", Path(tmp) / "stderr"
        path = [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": os.pathsep.join(path)}
        with log.open("w") as err, subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                 f"--callgrind-out-file={out}", sys.executable, __file__, "--inside",
                 "--events", str(events), "--batch", str(batch)],
                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                text=True) as child:
            assert child.stdin is not None
            assert child.stdout is not None
            try:
                facts = _drive(child.pid, child.stdin, child.stdout)
            except (BrokenPipeError, ValueError) as exc:
                child.kill()
                raise SystemExit(f"the measured child failed ({exc}):\n"
                                 f"{log.read_text()[-4000:]}") from exc
        if child.returncode != 0:
            raise SystemExit(f"the measured child failed:\n{log.read_text()[-4000:]}")
        totals = regions(out.parent.glob(f"{out.name}.*"))
    if not facts["stockflow"].startswith(str(src)):
        raise SystemExit(f"measured {facts['stockflow']}, not {src}")
    return {"messages": facts["messages"],
            **{name: (totals[name] - totals["empty"]) / facts["messages"]
               for name in REGIONS[1:]}}


def _drive(pid: int, to: IO[str], came: IO[str]) -> dict[str, Any]:
    """Count each region the child announces: instrumentation on (once), counters zeroed,
    go; when it is done, dump them under the region's name. Returns the child's facts."""
    instrumented = False
    while line := came.readline():
        what, _, region = line.strip().partition(" ")
        if what == "facts":
            return dict(json.loads(region))
        if what == "ready":
            if not instrumented:
                _control(pid, "--instr=on")
                instrumented = True
            _control(pid, "--zero")
        elif what == "done":
            _control(pid, f"--dump={region.replace(' ', '_')}")
        else:
            raise ValueError(f"unexpected line {line!r}")
        to.write("go\n")
        to.flush()
    raise ValueError("the child ended before its facts")


def _control(pid: int, option: str) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True,
                   capture_output=True, timeout=120)


def regions(dumps: Iterable[Path]) -> dict[str, int]:
    """Each region's instructions from the dumps callgrind_control asked for, by name."""
    totals = {}
    for dump in dumps:
        text = dump.read_bytes()
        named, found = _TRIGGER.search(text), _TOTAL.search(text)
        if named is None or found is None:
            raise SystemExit(f"{dump} has no trigger or no total")
        totals[named.group(1).decode().replace("_", " ")] = int(found.group(1))
    if missing := set(REGIONS) - set(totals):
        raise SystemExit(f"no callgrind dump for {', '.join(sorted(missing))}")
    return totals


# --- the child, under callgrind ------------------------------------------------------


@contextmanager
def _region(name: str) -> Iterator[None]:
    """Counted by callgrind from here to the end of the block: the parent is told, and
    zeroes the counters before it answers, and dumps them once told the region is done.
    Outside callgrind (nobody reading stdout) a block runs as it would. The cyclic
    collector starts each region empty-handed: where its collections fall then depends on
    the region alone, not on what ran before it."""
    gc.collect()
    _say_and_wait(f"ready {name}")
    yield
    _say_and_wait(f"done {name}")


def _say_and_wait(line: str) -> None:
    print(line, flush=True)
    sys.stdin.readline()


class _Copy:
    """A COPY's rows encoded by psycopg's own formatter, kept instead of sent."""

    def __init__(self, sink: list[Any]) -> None:
        from psycopg._copy_base import TextFormatter  # noqa: PLC0415 - what Copy uses
        from psycopg.adapt import Transformer  # noqa: PLC0415

        self.sink, self.formatter = sink, TextFormatter(Transformer())

    def __enter__(self) -> _Copy:
        return self

    def __exit__(self, *_: object) -> None:
        self.sink.append(self.formatter.end())

    def write_row(self, row: Sequence[Any]) -> None:
        if data := self.formatter.write_row(row):
            self.sink.append(data)


class _Keeper:
    """A connection and cursor that keep what they are given: statements' parameters and
    COPY data."""

    def __init__(self) -> None:
        self.kept: list[Any] = []

    def copy(self, _statement: str) -> _Copy:
        return _Copy(self.kept)

    def execute(self, _query: str, params: Any = None) -> _Keeper:
        self.kept.append(params)
        return self

    def executemany(self, _query: str, params: Any) -> None:
        self.kept.append(params)

    def cursor(self) -> _Keeper:
        return self

    def __enter__(self) -> _Keeper:
        return self

    def __exit__(self, *_: object) -> None:
        return


def _inside(events: int, size: int) -> int:
    import decide  # noqa: PLC0415 - bench/'s scripts import each other by bare name

    import stockflow  # noqa: PLC0415
    from stockflow.domain.state import Policy  # noqa: PLC0415
    from stockflow.engine.cache import StateCache  # noqa: PLC0415

    messages, setup = decide.workload(WARM + events)
    policy = Policy()
    cache = StateCache(policy, 10**9)
    keeper = _Keeper()
    # Not counted: the setup's keys into the cache, and a part of the stream through both
    # regions' code (imports, the parser's tables, psycopg's adapters found once per type)
    for p in decide.decided(messages[:setup + WARM], size, policy, cache):
        _format(p.rows, keeper)
    stream = messages[setup + WARM:]
    with _region("empty"):
        pass
    with _region("decide"):
        rows = [p.rows for p in decide.decided(stream, size, policy, cache)]
    with _region("commit formatting"):
        for r in rows:
            _format(r, keeper)
    print("facts " + json.dumps({"messages": len(stream), "batches": len(rows),
                                 "stockflow": str(Path(stockflow.__file__).resolve())}),
          flush=True)
    return 0


def _format(rows: Any, keeper: _Keeper) -> None:
    if hasattr(rows, "steps"):  # a batch as one statement: the steps' parameters
        keeper.execute("", [v for _, params in rows.steps() for v in params])
    else:  # a checkout from before (--baseline): COPY rows, then the pipeline's statements
        rows.copy(keeper)
        rows.queue(keeper)


if __name__ == "__main__":
    raise SystemExit(main())
