"""Agreement benchmarks for issue 7: ASAP-SAS sets 1, 2, 5, 6 and the Chinese ADS questions.

Reads ../shared/datasets (never copied into the project). Each dataset is split by a hash of the
answer id into a development part (80 %, the part rubrics were written and tuned on) and a
held-out part (20 %, not looked at while writing rubrics); both figures are printed.

    .venv/bin/python bench/trust.py            # everything
    .venv/bin/python bench/trust.py asap       # one benchmark: asap, ads or ads-draft
"""

from __future__ import annotations

import sys
import tempfile
import time
import zlib
from pathlib import Path

from grader import load_bank
from grader.draft import draft_rubric
from grader.evaluate import EvalReport, GradedRow, evaluate, read_graded

ROOT = Path(__file__).resolve().parent
DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
HELD_OUT = 5  # 1 in 5 answers held out


def split(rows: list[GradedRow]) -> tuple[list[GradedRow], list[GradedRow]]:
    """(development, held-out), by a stable hash of the answer id."""
    held = [r for r in rows if zlib.crc32(f"holdout|{r.answer_id}".encode()) % HELD_OUT == 0]
    dev = [r for r in rows if zlib.crc32(f"holdout|{r.answer_id}".encode()) % HELD_OUT != 0]
    return dev, held


def line(name: str, report: EvalReport) -> str:
    per = "  ".join(f"{q.rubric_id} {q.machine.qwk:.3f}" for q in report.questions if q.machine.qwk is not None)
    return f"  {name:<9} n={report.n:<5} mean QWK {report.mean_qwk:.3f}   pooled QWK {report.overall.qwk:.3f}   r {report.overall.pearson:.3f}   | {per}"


def asap() -> None:
    rows = read_graded(DATASETS / "asap_sas" / "train.csv")
    bank = load_bank(ROOT / "asap" / "rubrics")
    print("ASAP-SAS sets 1, 2, 5, 6 — matcher only, count scoring (QWK on 0..3)")
    for name, part in zip(("dev", "held-out", "all"), (*split(rows), rows), strict=True):
        report = evaluate(part, bank, id_format="asap-{}", worst=0)
        print(line(name, report))
        if name == "all":
            hh = [q.human.qwk for q in report.questions if q.human and q.human.qwk is not None]
            print(f"  human-human QWK (score vs score2): {'  '.join(f'{k:.3f}' for k in hh)}  mean {sum(hh) / len(hh):.3f}")


def ads_report(bank_dir: Path, title: str, *, per_question: bool = True) -> None:
    rows = read_graded(DATASETS / "chinese_ads" / "train.csv")
    bank = load_bank(bank_dir)
    print(title)
    for name, part in zip(("dev", "held-out", "all"), (*split(rows), rows), strict=True):
        report = evaluate(part, bank, id_format="ads-{}", worst=0)
        rs = [q.machine.pearson for q in report.questions if q.machine.pearson is not None]
        print(
            f"  {name:<9} n={report.n:<5} mean per-question r {sum(rs) / len(rs):.3f}   pooled r {report.overall.pearson:.3f}"
            f"   mean QWK {report.mean_qwk:.3f}   pooled QWK {report.overall.qwk:.3f}"
        )
        if name == "all" and per_question:
            print("  per question r: " + "  ".join(f"{q.question_id} {q.machine.pearson or 0:.2f}" for q in report.questions))


def ads() -> None:
    ads_report(ROOT / "ads" / "rubrics", "Chinese ADS (data structures) — hand-written rubrics, matcher only, scale 0..10")


def ads_draft() -> None:
    import csv

    with (DATASETS / "chinese_ads" / "train.csv").open(encoding="utf-8") as f:
        questions = {r["question_id"]: (r["question"], r["reference_answer"]) for r in csv.DictReader(f)}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for qid, (question, reference) in questions.items():
            text = draft_rubric(question, reference, lang="zh", rubric_id=f"ads-{qid}", max_score=10)
            (Path(tmp) / f"ads-{qid}.yaml").write_text(text, encoding="utf-8")
        print(f"(drafted {len(questions)} rubrics in {time.perf_counter() - t:.2f}s with `grader draft`, no edits)")
        ads_report(Path(tmp), "Chinese ADS — rubrics from `grader draft` alone, matcher only")


if __name__ == "__main__":
    wanted = sys.argv[1:] or ["asap", "ads", "ads-draft"]
    for name in wanted:
        {"asap": asap, "ads": ads, "ads-draft": ads_draft}[name]()
        print()
