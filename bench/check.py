"""`grader check` cost: wall time of the library call and of the CLI (a fresh process).

Prints rubrics, examples and seconds for `check_bank` on a bank (default: the built-in
bank, else tests/data/check/good), the per-example cost, and the median CLI wall time.

    python bench/check.py [BANK] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from grader.check import check_bank
from grader.check_output import format_junit

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bank", nargs="?", default=None)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    bank = Path(args.bank) if args.bank else ROOT / "rubrics"
    if not any(bank.glob("*.yaml")):
        bank = ROOT / "tests" / "data" / "check" / "good"
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        report = check_bank([bank])
        format_junit(report)
        times.append(time.perf_counter() - t0)
    lib = statistics.median(times)
    checks = report.examples + sum(1 for c in report.cases if c.kind == "reference")
    print(f"bank: {bank}")
    print(
        f"library check_bank + junit: {report.rubrics} rubrics, {report.examples} examples: median {lib * 1000:.0f} ms over {args.runs} runs"
    )
    print(f"  per graded answer (examples + reference answers): {lib / max(checks, 1) * 1000:.2f} ms")
    cli = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "grader", "check", str(bank)], capture_output=True, check=False)
        cli.append(time.perf_counter() - t0)
    print(f"CLI `grader check` (fresh process): median {statistics.median(cli) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
