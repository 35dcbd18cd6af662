"""Judge throughput, prompt size and caching against the scripted local server (300 ms per request).

    .venv/bin/python bench/judge.py [--answers 500] [--concurrency 16] [--latency 0.3]

Prints: wall time vs the ideal (answers × latency / concurrency; target within 1.3×), prompt
tokens per answer for a 6-point rubric and a ~300-character answer (target ≤ 1200; counted by the
server's own tokenizer: one token per word, CJK character or punctuation mark), and the requests
a second run makes (target 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from judge_server import ScriptedServer, keyword_judge  # noqa: E402

from grader import load_rubric  # noqa: E402
from grader.judge import JudgeConfig, grade_many  # noqa: E402

SENTENCES = [
    "Batch normalization standardizes each feature with the statistics of the current mini-batch",
    "then a learnable gamma and beta rescale and shift it so the layer keeps its capacity",
    "at inference it switches to the running averages gathered while training",
    "it lets us use higher learning rates and the network converges faster",
    "with tiny batches the estimates get noisy and it works worse",
    "the batch noise also acts a little like a regularizer",
    "批归一化用当前批次的均值方差做标准化",
    "推理阶段改用训练时累计的统计量",
]
KEYWORDS = {
    "normalize-batch": ["statistics of the current mini-batch", "均值方差"],
    "scale-shift": ["gamma and beta"],
    "running-stats": ["running averages", "累计的统计量"],
    "faster-training": ["converges faster"],
    "small-batch": ["tiny batches"],
    "regularize": ["regularizer"],
}


def make_answer(i: int) -> str:
    """A distinct ~300-character answer (mixed en/zh), different for every i."""
    parts = [SENTENCES[(i + k) % len(SENTENCES)] for k in range(4)]
    text = f"Answer {i}: " + ". ".join(parts) + "."
    while len(text) < 300:
        text += " " + SENTENCES[(i + len(text)) % len(SENTENCES)] + "."
    return text[:320]


def serve(latency: float, conn: Connection) -> None:
    """The scripted server, in its own process (as a real endpoint would be): no GIL shared with the client."""
    with ScriptedServer(keyword_judge(KEYWORDS), latency=latency) as srv:
        conn.send(srv.base_url)
        conn.recv()  # until told to stop


class Remote:
    """The scripted server running in another process: its URL and its request count."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    @property
    def count(self) -> int:
        with urllib.request.urlopen(self.base_url + "/stats", timeout=5) as r:
            return int(json.load(r)["requests"])


@contextmanager
def remote_server(latency: float) -> Iterator[Remote]:
    """Start the scripted server in its own process for the duration of the block."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(latency, child), daemon=True)
    proc.start()
    try:
        yield Remote(parent.recv())
    finally:
        parent.send("stop")
        proc.join(10)


async def run(n: int, concurrency: int, latency: float, cache_dir: Path, srv: Remote) -> None:
    rubric = load_rubric(ROOT / "tests" / "data" / "judge" / "six-points.yaml")
    answers = [make_answer(i) for i in range(n)]
    cfg = JudgeConfig(model="bench", base_url=srv.base_url, policy="full", cache_dir=cache_dir, concurrency=concurrency)
    t0 = time.perf_counter()
    results, usage = await grade_many([(rubric, a) for a in answers], cfg)
    wall = time.perf_counter() - t0
    ideal = n * latency / concurrency
    per_answer = usage.prompt_tokens / max(1, usage.requests)
    lengths = sorted(len(a) for a in answers)
    print(
        f"answers: {n} (length {lengths[0]}-{lengths[-1]} chars), 6-point rubric, policy full, concurrency {concurrency}, latency {latency * 1000:.0f} ms"
    )
    print(f"first run:  {wall:.2f} s wall, ideal {ideal:.2f} s -> {wall / ideal:.2f}x ideal (target <= 1.3x)")
    print(f"            {usage.requests} requests, {usage.failures} unscored")
    print(
        f"prompt tokens per answer: {per_answer:.0f} (target <= 1200); completion tokens per answer: {usage.completion_tokens / max(1, usage.requests):.0f}"
    )
    met = sum(p.status == "met" for r in results for p in r.points)
    print(f"points met by the scripted judge: {met} of {6 * n}")
    before = srv.count
    t0 = time.perf_counter()
    _, again = await grade_many([(rubric, a) for a in answers], cfg)
    print(f"second run: {time.perf_counter() - t0:.2f} s wall, {srv.count - before} requests (target 0), {again.cached} cached")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.3)
    args = ap.parse_args()
    with remote_server(args.latency) as srv, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.answers, args.concurrency, args.latency, Path(tmp), srv))


if __name__ == "__main__":
    main()
