"""`grader batch --judge` throughput and resume against the scripted local server (300 ms per request).

    .venv/bin/python bench/batch_judge.py [--rows 400] [--concurrency 16] [--latency 0.3]

Runs the real command (a fresh process, matcher workers on every core) on a cohort of distinct
~300-character answers to a 6-point rubric with policy full, and prints: wall time vs the ideal
(rows × latency / concurrency; target within 1.3×), and the requests a resumed run makes after
half of results.jsonl is lost (target 0: the judge's cache answers).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from judge import make_answer, remote_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.3)
    args = ap.parse_args()
    with remote_server(args.latency) as srv, tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        inp = tmp / "cohort.csv"
        with inp.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["student", "question", "answer"])
            for i in range(args.rows):
                w.writerow([f"s{i}", "six-points", make_answer(i)])
        out = tmp / "out"
        cmd = [sys.executable, "-m", "grader", "batch", str(inp), "--out", str(out), "--bank", str(ROOT / "tests" / "data" / "judge")]
        cmd += ["--judge", "--judge-policy", "full", "--concurrency", str(args.concurrency), "--no-report", "--no-progress"]
        env = {**os.environ, "GRADER_MODEL": "bench", "OPENAI_BASE_URL": srv.base_url, "GRADER_CACHE_DIR": str(tmp / "cache")}
        t0 = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        wall = time.perf_counter() - t0
        ideal = args.rows * args.latency / args.concurrency
        print(f"rows: {args.rows}, 6-point rubric, policy full, concurrency {args.concurrency}, latency {args.latency * 1000:.0f} ms")
        print(f"first run:  exit {run.returncode}, {wall:.2f} s wall (process start included), ideal {ideal:.2f} s -> {wall / ideal:.2f}x")
        print("            " + next((ln for ln in run.stderr.splitlines() if ln.startswith("judge:")), run.stderr[-300:]))
        lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (out / "results.jsonl").write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
        before = srv.count
        t0 = time.perf_counter()
        again = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        print(
            f"resume after losing half the results: exit {again.returncode}, {time.perf_counter() - t0:.2f} s, "
            f"{srv.count - before} requests (target 0)"
        )


if __name__ == "__main__":
    main()
