"""Matcher throughput and CLI cold start.

Prints answers/s on one core for ~300-character zh/en/mixed answers against a 6-point
rubric, and the median wall time of `grader grade` (a fresh process each time).

    python bench/matcher.py [--n 3000] [--runs 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from grader import COMPILED, grade, load_bank, parse_rubric

RUBRIC = """
id: bench-dropout
question: {zh: Dropout 有什么作用？训练和推理时怎么用？, en: "What does dropout do, at training and at inference?"}
terms:
  infer: [inference, test time, testing, eval mode, evaluation, deploy, 推理, 预测, 测试阶段, 部署]
  drop: [drop, zero out, deactivate, switch off, mask, 丢弃, 置零, 失活, 屏蔽]
  random: [random, randomly, stochastic, with probability, 随机, 以概率]
key_points:
  - id: random-drop
    weight: 25
    statement: {zh: 训练时随机丢弃神经元, en: units are dropped at random during training}
    match: [bernoulli, 伯努利, {all: [$random, $drop], window: 30}]
  - id: regularize
    weight: 20
    statement: {zh: 正则化，减少过拟合, en: regularises and reduces overfitting}
    match: [overfitting, overfit, 过拟合, regulari*, 正则, co-adaptation, 共适应]
  - id: ensemble
    weight: 15
    statement: {zh: 近似集成许多子网络, en: approximates an ensemble of thinned subnetworks}
    match: [ensemble, model averaging, 集成, {all: [[average, 平均], [subnetwork, networks, 子网络, 网络]]}]
  - id: inference-off
    weight: 20
    statement: {zh: 推理时关闭, en: off at inference}
    match: [model.eval(), {all: [$infer, [off, disabled, not used, no dropout, all units, 关闭, 不使用, 不丢弃, 全部神经元]], window: 40}]
  - id: scaling
    weight: 15
    statement: {zh: 训练时按 1/(1-p) 缩放, en: inverted dropout scales by 1/(1-p) at training}
    match: [inverted dropout, {regex: '1\\s*/\\s*\\(?1\\s*-\\s*p'}, {all: [[scale, rescale, 缩放, 放大], [1-p, keep probability, 保留概率, expectation, 期望]]}]
  - id: placement
    weight: 5
    statement: {zh: 常用于全连接层, en: typically on fully connected layers}
    match: [fully connected, dense layer, 全连接]
misconceptions:
  - id: on-at-inference
    penalty: 15
    correction: {zh: 推理时关闭, en: off at inference}
    match: [{all: [$infer, [also, still, 也, 仍然], [randomly drop, 随机丢弃]]}]
"""

SENTENCES = [
    "Dropout randomly zeroes each activation with probability p during training, which reduces overfitting.",
    "It works like training an ensemble of many thinned subnetworks that share weights.",
    "At inference time dropout is turned off and every unit is used, so predictions are deterministic.",
    "With inverted dropout the kept activations are scaled by 1/(1-p) during training.",
    "训练的时候以概率p随机把一部分神经元的输出置零，相当于一种正则化，可以缓解过拟合。",
    "可以理解为同时训练了很多共享参数的子网络，推理时相当于对它们做平均。",
    "推理阶段要关闭dropout，使用全部神经元，pytorch里调用model.eval()就行。",
    "用 dropout 的时候 training 阶段随机 drop 掉一些 neuron，test 的时候不丢弃。",
    "I think it is mostly used on fully connected layers, less so on conv layers, and p=0.5 is common.",
    "一般放在全连接层后面，卷积层用得比较少，p 常取 0.1 到 0.5。",
]


def make_answers(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = ""
        while len(text) < 300:
            text += rng.choice(SENTENCES) + " "
        out.append(text[:320])
    return out


def throughput(n: int) -> float:
    rubric = parse_rubric(RUBRIC, source="bench")
    answers = make_answers(n)
    grade(rubric, answers[0])  # compile once, as a long-running process would
    # CPU time of this process: robust to other work on the machine (this is one core's rate).
    start = time.process_time()
    for a in answers:
        grade(rubric, a)
    return n / (time.process_time() - start)


def cold_start(runs: int) -> float:
    exe = Path(sys.executable).with_name("grader")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "grader"]
    bank = load_bank()
    rid = next(iter(bank))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*cmd, "grade", rid, "--answer", "dropout randomly drops units at training time"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rates = [throughput(args.n) for _ in range(3)]
    print(
        f"matcher: {statistics.median(rates):,.0f} answers/s (median of 3 runs, {args.n} answers of ~300 chars, 6-point rubric, 1 core, {'compiled' if COMPILED else 'pure Python'} matcher)"
    )
    print(f"cold start: `grader grade` median {cold_start(args.runs) * 1000:.0f} ms over {args.runs} runs")


if __name__ == "__main__":
    main()
