"""How the practice history scales: open (integrity check + migrations), load, pick, progress.

Run: .venv/bin/python bench/history.py [N_ATTEMPTS]
"""

from __future__ import annotations

import io
import random
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from grader.history import Attempt, PointRecord, open_history
from grader.progress import render_progress
from grader.scheduler import pick


def main(n: int) -> None:
    rng = random.Random(0)
    questions = [f"q{i:03d}" for i in range(60)]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "h.sqlite3"
        t0 = time.time() - n * 600
        with open_history(db) as h:
            for i in range(n):
                q = rng.choice(questions)
                pts = [PointRecord(id=f"p{j}", status=rng.choice(["met", "missing"]), credit=1.0, weight=1.0) for j in range(6)]
                pct = rng.uniform(0, 100)
                h.pending.append(
                    Attempt(
                        ts=t0 + i * 600,
                        rubric_id=q,
                        rubric_version="v",
                        answer="x" * 400,
                        score=pct,
                        max_score=100,
                        percent=pct,
                        round_id=f"r{i // 2}",
                        try_no=1 + i % 2,
                        points=pts,
                    )
                )
            start = time.perf_counter()
            h.flush()
            write = time.perf_counter() - start
        start = time.perf_counter()
        h = open_history(db)
        opened = time.perf_counter() - start
        start = time.perf_counter()
        attempts = h.attempts()
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(10):
            pick(questions, attempts, now=time.time(), rng=rng)
        picked = (time.perf_counter() - start) / 10
        start = time.perf_counter()
        Console(file=io.StringIO(), width=120).print(render_progress(attempts, None, now=time.time()))
        progress = time.perf_counter() - start
        start = time.perf_counter()
        h.record(attempts[0].model_copy(update={"id": None}))
        one = time.perf_counter() - start
        h.close()
        size = db.stat().st_size / 1e6
    print(f"attempts={n} db={size:.1f} MB")
    print(f"write all (one transaction) {write * 1000:8.1f} ms")
    print(f"open + quick_check          {opened * 1000:8.1f} ms")
    print(f"load every attempt          {loaded * 1000:8.1f} ms")
    print(f"pick next question          {picked * 1000:8.1f} ms")
    print(f"progress report             {progress * 1000:8.1f} ms")
    print(f"record one attempt          {one * 1000:8.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
