"""Batch grading end to end: throughput, peak RSS (10k vs 100k rows) and report time.

Builds a realistic cohort over the built-in bank (every question there): each student answers
every question in zh, en or mixed zh/en, from 1-4 sentences of the reference answer or an
example answer from the rubric, with a share of the short stock answers real classes produce
("不知道", "overfitting", copy-pasted answers). Then runs `grader batch` (matcher only) and
`grader report` as a new user would, and prints figures.

    python bench/batch.py [--sizes 10000 100000] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from grader import load_bank

STOCK = ["不知道", "不会", "I don't know", "no idea", "过拟合", "overfitting", "略", "same as above", "见上题", "?"]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[。！？.!?；;])\s*|\n", text) if len(s.strip()) > 4]


def build_cohort(path: Path, n: int, seed: int = 7) -> dict[str, float]:
    """Write an n-row CSV; returns the share of each answer kind."""
    rng = random.Random(seed)
    bank = load_bank()
    pools: dict[str, dict[str, list[str]]] = {}
    examples: dict[str, list[str]] = {}
    for qid in bank:
        r = bank[qid]
        pools[qid] = {lang: sentences(r.reference_answer.get(lang)) for lang in ("zh", "en")}
        examples[qid] = [e.answer for e in r.examples]
    qids = sorted(pools)
    kinds: dict[str, int] = {"zh": 0, "en": 0, "mixed": 0, "example": 0, "stock": 0, "copy": 0}
    recent: list[tuple[str, str]] = []
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "question", "answer"])
        for i in range(n):
            student = f"stu{i // len(qids):06d}"
            qid = qids[i % len(qids)]
            roll = rng.random()
            if roll < 0.08:
                kind, text = "stock", rng.choice(STOCK)
            elif roll < 0.12 and recent:
                kind, text = "copy", rng.choice([t for q, t in recent if q == qid] or [rng.choice(STOCK)])
            elif roll < 0.22 and examples[qid]:
                kind, text = "example", rng.choice(examples[qid])
            else:
                lang = rng.choice(["zh", "zh", "en", "mixed"])
                kind = lang
                k = rng.randint(1, 4)
                if lang == "mixed":
                    parts = rng.sample(pools[qid]["zh"], min(k, len(pools[qid]["zh"]))) + rng.sample(pools[qid]["en"], 1)
                    rng.shuffle(parts)
                else:
                    parts = rng.sample(pools[qid][lang], min(k, len(pools[qid][lang])))
                text = (" " if lang == "en" else "").join(parts)
            kinds[kind] += 1
            recent.append((qid, text))
            if len(recent) > 200:
                recent.pop(0)
            w.writerow([student, qid, text])
    return {k: v / n for k, v in kinds.items()}


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in kB."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def timed(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    """(seconds, peak tree RSS in MB, stderr) of a command."""
    env = {**os.environ, "CI": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss_kb(proc.pid))
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    stop.set()
    th.join()
    dt = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()}")
    return dt, peak // 1024, err.decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="Keep the cohorts and outputs in this folder.")
    args = ap.parse_args()
    root = (args.keep or Path(tempfile.mkdtemp(prefix="grader-bench-"))).resolve()
    root.mkdir(parents=True, exist_ok=True)
    # Run from the cohort folder, as a user would: `python -m grader` from the repository root
    # would import the source tree, not the installed (possibly compiled) package.
    grader = [sys.executable, "-m", "grader"]
    version = subprocess.run([*grader, "--version"], capture_output=True, text=True, cwd=root, check=True).stdout.strip()
    hint = "" if "compiled" in version else "; `pip install .` (not -e) compiles it, about 1.2x faster"
    print(f"bank: {len(load_bank())} questions; {os.cpu_count()} CPUs; workers={args.workers}; {version}{hint}")
    for n in args.sizes:
        cohort = root / f"cohort-{n}.csv"
        mix = build_cohort(cohort, n)
        out = root / f"out-{n}"
        dt, rss, err = timed(
            [*grader, "batch", str(cohort), "--out", str(out), "--workers", str(args.workers), "--restart", "--no-report"], root
        )
        unique = re.search(r"distinct answers graded: (\d+)", err)
        rt, rrss, _ = timed([*grader, "report", str(out)], root)
        size = (out / "report.html").stat().st_size / 1e6
        print(
            f"{n:>7,} rows ({', '.join(f'{k} {v:.0%}' for k, v in mix.items())}; "
            f"{int(unique.group(1)) if unique else 0:,} distinct after dedupe)\n"
            f"        batch: {dt:6.1f} s  {n / dt:8,.0f} answers/s end to end (read → results.jsonl/csv, students.csv)  "
            f"peak RSS {rss} MB (main + workers)\n"
            f"        report: {rt:5.1f} s  peak RSS {rrss} MB  report.html {size:.1f} MB"
        )
    if args.keep is None:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
