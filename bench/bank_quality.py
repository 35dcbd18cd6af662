"""Agreement of the built-in bank with expert grades on held-out answers.

Reads bench/holdout/answers.jsonl (written by someone who never saw the rubrics) and
prints Spearman ρ and mean absolute error against the expert's 0–100, per question and
overall, plus the mean score of negated, misconception and injection answers.

    python bench/bank_quality.py [--bank DIR] [--worst 10] [--data bench/devset/answers.jsonl]

bench/holdout/ is the test set (never tune against it); bench/devset/ is for tuning.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from grader import GraderError, evaluate, grade, load_bank

HOLDOUT = Path(__file__).parent / "holdout" / "answers.jsonl"


def spearman(xs: list[float], ys: list[float]) -> float:
    rho = evaluate.spearman(xs, ys)
    return float("nan") if rho is None else rho


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bank", default=None)
    parser.add_argument("--worst", type=int, default=10)
    parser.add_argument("--data", type=Path, default=HOLDOUT, help="graded answers (JSONL); default: the held-out test set")
    parser.add_argument("--question", default=None, help="only this question id")
    args = parser.parse_args()
    bank = load_bank(args.bank)
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.question:
        rows = [r for r in rows if r["question_id"] == args.question]
    by_q: dict[str, list[tuple[float, float]]] = defaultdict(list)
    by_kind: dict[str, list[float]] = defaultdict(list)
    by_lang: dict[str, list[tuple[float, float]]] = defaultdict(list)
    diffs = []
    skipped = set()
    for row in rows:
        try:
            rubric = bank[row["question_id"]]
        except GraderError:
            skipped.add(row["question_id"])
            continue
        res = grade(rubric, row["answer"])
        got = res.percent
        by_q[row["question_id"]].append((row["score"], got))
        by_kind[row["kind"]].append(got)
        by_lang[row["lang"]].append((row["score"], got))
        diffs.append((abs(got - row["score"]), row, got, res))
    if skipped:
        print(f"skipped (no rubric): {', '.join(sorted(skipped))}")
    print(f"{'question':<28}{'n':>4}{'spearman':>10}{'MAE':>8}")
    for q in sorted(by_q):
        pairs = by_q[q]
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        print(f"{q:<28}{len(pairs):>4}{spearman(xs, ys):>10.2f}{statistics.fmean(abs(a - b) for a, b in pairs):>8.1f}")
    allp = [p for ps in by_q.values() for p in ps]
    if not allp:
        return
    xs, ys = [p[0] for p in allp], [p[1] for p in allp]
    print(f"{'OVERALL':<28}{len(allp):>4}{spearman(xs, ys):>10.2f}{statistics.fmean(abs(a - b) for a, b in allp):>8.1f}")
    per_q = [spearman([p[0] for p in ps], [p[1] for p in ps]) for ps in by_q.values()]
    print(f"mean per-question spearman: {statistics.fmean(per_q):.2f}")
    for lang, ps in sorted(by_lang.items()):
        print(
            f"lang {lang:<6} n={len(ps):<4} spearman={spearman([p[0] for p in ps], [p[1] for p in ps]):.2f} MAE={statistics.fmean(abs(a - b) for a, b in ps):.1f}"
        )
    print("mean grader score by kind (expert scale 0-100):")
    for kind, scores in sorted(by_kind.items()):
        print(f"  {kind:<16} n={len(scores):<4} mean={statistics.fmean(scores):5.1f}")
    if args.worst:
        print(f"\nworst {args.worst} disagreements:")
        for _d, row, got, res in sorted(diffs, key=lambda t: -t[0])[: args.worst]:
            short = {"met": "+", "partial": "~", "missing": "-", "contradicted": "x", "unscored": "?"}
            pts = " ".join(f"{short[p.status]}{p.id}" for p in res.points)
            print(f"  {row['question_id']:<24} expert={row['score']:<4} grader={got:<5} {row['kind']:<15} {row['lang']:<5} {pts}")
            print(f"      {row['answer'][:160]!r}")


if __name__ == "__main__":
    main()
