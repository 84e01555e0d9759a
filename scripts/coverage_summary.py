"""Prints the coverage figure of the last measured run: per package of stockflow, then total.

    .venv/bin/python scripts/coverage_summary.py [DATA_FILE]

Reads the data `coverage run` left (default: .coverage, as configured in pyproject.toml's
[tool.coverage]); lines, not branches. scripts/test runs it after the suite.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import coverage


def by_package(files: dict[str, dict[str, dict[str, int]]]) -> dict[str, tuple[int, int]]:
    """(statements, covered) per stockflow subpackage; modules directly in stockflow
    count as the package `stockflow`."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, doc in files.items():
        parts = Path(name).parts
        inside = parts[parts.index("stockflow") + 1:]
        package = inside[0] if len(inside) > 1 else "stockflow"
        totals[package][0] += doc["summary"]["num_statements"]
        totals[package][1] += doc["summary"]["covered_lines"]
    return {p: (n, c) for p, (n, c) in sorted(totals.items())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_file", nargs="?", default=None, help="default: .coverage")
    args = ap.parse_args()
    # data_file=None would mean "no data file": leave the configured one unless given
    cov = coverage.Coverage(**({"data_file": args.data_file} if args.data_file else {}))
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out))
        report = json.loads(out.read_text())
    rows = by_package(report["files"])
    for package, (statements, covered) in rows.items():
        print(f"  {package:<12} {covered / max(statements, 1):6.1%}  of {statements:>6,} lines")
    total = report["totals"]
    print(f"  {'total':<12} {total['percent_covered'] / 100:6.1%}  of "
          f"{total['num_statements']:>6,} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
