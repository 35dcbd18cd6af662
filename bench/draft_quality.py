"""How good are rubrics from `grader draft` alone, with no hand edits? Agreement and leniency.

    .venv/bin/python bench/draft_quality.py            # everything
    .venv/bin/python bench/draft_quality.py ads        # one part: ads, asap or leniency

- ads: the 15 Chinese ADS questions drafted from their reference answers (scale 0..10); mean
  per-question Pearson r and QWK against the human scores, dev / held-out / all (the same split and
  figures as `bench/trust.py ads-draft`).
- asap: ASAP-SAS sets 1, 2, 5, 6 drafted from the official key elements in prompts.json (one point
  per element, "other acceptable" lines dropped, scale 0..3); QWK per set and the mean.
- leniency: the mean score (percent of max) each draft gives to answers that know nothing:
  "不知道" / "I don't know", the question repeated back, and the reference answers of the *other*
  questions of the same set (ADS; ASAP; a few English ML questions). All should be near 0; the
  reference answer itself should be 100 (printed as a check).

Reads ../shared/datasets (never copied into the project).
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from pathlib import Path

from grader import grade, load_bank
from grader.draft import draft_rubric
from grader.evaluate import evaluate, read_graded
from grader.rubric import Rubric, parse_rubric

ROOT = Path(__file__).resolve().parent
DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
sys.path.insert(0, str(ROOT))
from trust import ads_report  # noqa: E402  (the benchmarks' one ADS table and dev/held-out split)

# English ML and CS questions (question, reference) for the leniency figure.
EN_ML = [
    (
        "What does dropout do?",
        "Dropout randomly zeroes activations during training, which prevents co-adaptation of neurons and reduces "
        "overfitting. At inference all units are kept and activations are scaled by the keep probability.",
    ),
    (
        "Is a larger batch size always better for generalization?",
        "No. Very large batches reduce gradient noise and often generalize worse (sharp minima); they need a scaled "
        "learning rate and warmup.",
    ),
    ("What is the time complexity of searching a linked list?", "O(n), because you must traverse the nodes one by one."),
    (
        "Name three ways to reduce overfitting.",
        "1. Get more training data. 2. Add L2 regularization (weight decay). 3. Use dropout. 4. Stop early when the validation loss rises.",
    ),
    (
        "Why use a validation set?",
        "A validation set is held out from training to tune hyperparameters and detect overfitting without touching the test set.",
    ),
    (
        "What is the vanishing gradient problem?",
        "In deep networks gradients shrink exponentially as they are backpropagated through many layers with saturating "
        "activations such as sigmoid, so early layers learn very slowly; ReLU, residual connections and careful "
        "initialization help.",
    ),
]


def ads_questions() -> dict[str, tuple[str, str]]:
    with (DATASETS / "chinese_ads" / "train.csv").open(encoding="utf-8") as f:
        return {r["question_id"]: (r["question"], r["reference_answer"]) for r in csv.DictReader(f)}


def asap_questions() -> dict[str, tuple[str, str]]:
    out = {}
    for s in json.loads((DATASETS / "asap_sas" / "prompts.json").read_text(encoding="utf-8")):
        elements = "\n".join(x for x in s["key_elements"].splitlines() if "ther acceptable" not in x and "ther reasonable" not in x)
        out[str(s["essay_set"])] = (s["question"], elements)
    return out


def draft_dir(questions: dict[str, tuple[str, str]], prefix: str, lang: str, max_score: float, out: Path) -> None:
    for qid, (question, reference) in questions.items():
        text = draft_rubric(question, reference, lang=lang, rubric_id=f"{prefix}-{qid}", max_score=max_score)
        (out / f"{prefix}-{qid}.yaml").write_text(text, encoding="utf-8")


def ads() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        draft_dir(ads_questions(), "ads", "zh", 10, Path(tmp))
        ads_report(Path(tmp), "Chinese ADS — rubrics from `grader draft` alone, matcher only, scale 0..10", per_question=False)


def asap() -> None:
    rows = read_graded(DATASETS / "asap_sas" / "train.csv")
    with tempfile.TemporaryDirectory() as tmp:
        draft_dir(asap_questions(), "asap", "en", 3, Path(tmp))
        report = evaluate(rows, load_bank(Path(tmp)), id_format="asap-{}", worst=0)
    per = "  ".join(f"{q.rubric_id} {q.machine.qwk:.3f}" for q in report.questions if q.machine.qwk is not None)
    print("ASAP-SAS sets 1, 2, 5, 6 — rubrics from `grader draft` alone (key elements), scale 0..3, all train rows")
    print(f"  mean QWK {report.mean_qwk:.3f}   pooled QWK {report.overall.qwk:.3f}   r {report.overall.pearson:.3f}   | {per}")


def _leniency_set(name: str, questions: list[tuple[str, str]], lang: str, dont_know: str) -> dict[str, list[float]]:
    rubrics: list[Rubric] = [
        parse_rubric(draft_rubric(q, r, lang=lang, rubric_id=f"l{i}", max_score=100), source="<draft>")
        for i, (q, r) in enumerate(questions)
    ]
    got: dict[str, list[float]] = {"reference": [], "don't know": [], "question": [], "other refs": []}
    for i, rubric in enumerate(rubrics):
        question, reference = questions[i]
        got["reference"].append(grade(rubric, reference).percent)
        got["don't know"].append(grade(rubric, dont_know).percent)
        got["question"].append(grade(rubric, question).percent)
        others = [grade(rubric, r).percent for j, (_, r) in enumerate(questions) if j != i]
        got["other refs"].append(sum(others) / len(others))
    cells = "   ".join(f"{k} {sum(v) / len(v):5.1f}" for k, v in got.items())
    print(f"  {name:<7} n={len(questions):<3} {cells}")
    return got


def leniency() -> None:
    print("Leniency — mean score (% of max) drafts give to non-answers (should be ~0; the reference should be 100)")
    sets = [
        _leniency_set("ADS zh", list(ads_questions().values()), "zh", "不知道"),
        _leniency_set("ASAP en", list(asap_questions().values()), "en", "I don't know"),
        _leniency_set("ML en", EN_ML, "en", "I don't know"),
    ]
    non = [x for s in sets for k in ("don't know", "question", "other refs") for x in s[k]]
    print(f"  leniency (mean over the three non-answer kinds, all sets): {sum(non) / len(non):.1f} %")


if __name__ == "__main__":
    for part in sys.argv[1:] or ["ads", "asap", "leniency"]:
        {"ads": ads, "asap": asap, "leniency": leniency}[part]()
        print()
