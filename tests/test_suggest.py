"""`grader suggest`: mining, held-out measurement, and --apply keeping comments and order."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Literal

import pytest
from click.testing import CliRunner

from grader import load_rubric
from grader.cli import main
from grader.evaluate import read_graded
from grader.rubric import parse_rubric as load_rubric_text
from grader.suggest import Proposal, apply_proposals, ngrams, suggest, with_rule

DATA = Path(__file__).parent / "data" / "trust"

# The fruit rubric knows apples, cherries and plums; these graders also credit "damson" (a plum)
# and never credit "banana". Every answer also carries a unique filler word, so no single answer's
# wording can be mined: only what recurs across answers can.
PATTERNS = [
    ("apples and damsons", 2),
    ("apple, cherry and damson", 3),
    ("an apple", 1),
    ("bananas and apples", 1),
    ("nothing useful", 0),
    ("cherries and damsons", 2),
]


def write_dataset(path: Path, n: int = 90) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question_id", "answer_id", "answer", "score"])
        for i in range(n):
            text, score = PATTERNS[i % len(PATTERNS)]
            w.writerow(["fruit", f"r{i}", f"{text} zq{i}x", score])
    return path


def test_ngrams_en_words_and_zh_characters() -> None:
    grams = ngrams("The learning rate 学习率衰减")
    assert {"learning", "learning rate", "rate"} <= grams
    assert "the learning" not in grams  # stopword at an edge
    assert {"学习", "学习率", "率衰减"} <= grams


def test_suggest_finds_the_missing_synonym_and_measures_it_held_out(tmp_path: Path) -> None:
    rows = read_graded(write_dataset(tmp_path / "d.csv"))
    report, improved = suggest(load_rubric(DATA / "bank" / "fruit.yaml"), rows, folds=3, min_support=3)
    accepted = [p for p in report.proposals if p.accepted]
    assert any(p.kind == "alternative" and p.phrase.startswith("damson") for p in accepted), report.proposals
    best = next(p for p in accepted if p.phrase.startswith("damson"))
    assert best.mined_delta > 0 and best.heldout_delta > 0
    assert report.final_heldout is not None and report.base_heldout is not None
    assert report.final_heldout > report.base_heldout
    assert report.n_mining + report.n_heldout == 90
    assert not any("zq" in p.phrase for p in report.proposals)  # one-answer words are never proposed
    assert not any(p.phrase.startswith("banana") and p.kind == "alternative" and p.accepted for p in report.proposals)
    # The improved rubric really grades the synonym.
    from grader import grade

    assert grade(improved, "apples and damsons").score == 2


def test_cli_never_writes_without_apply_and_apply_keeps_comments(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d.csv")
    rubric = tmp_path / "fruit.yaml"
    shutil.copy(DATA / "bank" / "fruit.yaml", rubric)
    before = rubric.read_text(encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["suggest", str(rubric), "--graded", str(data), "--min-support", "3"])
    assert result.exit_code == 0, result.output
    assert "damson" in result.output and "held-out" in result.output
    assert "nothing written" in result.output
    assert rubric.read_text(encoding="utf-8") == before

    result = runner.invoke(main, ["suggest", str(rubric), "--graded", str(data), "--min-support", "3", "--apply"])
    assert result.exit_code == 0, result.output
    after = rubric.read_text(encoding="utf-8")
    assert after != before
    assert after.startswith("# A tiny count-scored rubric for the eval/suggest tests")  # comments survive
    keys = [line.split(":")[0] for line in after.splitlines() if line and not line.startswith((" ", "#"))]
    assert keys == ["id", "question", "max_score", "reference_answer", "key_points", "scoring"]  # order survives
    assert "damson" in after
    # The written file is a valid rubric that now credits the synonym.
    from grader import grade

    assert grade(load_rubric(rubric), "cherries and damsons").score == 2
    # A second run in JSON reports no new accepted damson proposal.
    result = runner.invoke(main, ["suggest", str(rubric), "--graded", str(data), "--min-support", "3", "--format", "json"])
    report = json.loads(result.output)
    assert not [p for p in report["proposals"] if p["accepted"] and p["phrase"].startswith("damson")]


def test_apply_refuses_to_write_an_invalid_rubric(tmp_path: Path) -> None:
    from grader.errors import RubricErrors
    from grader.suggest import Proposal

    rubric = tmp_path / "fruit.yaml"
    shutil.copy(DATA / "bank" / "fruit.yaml", rubric)
    before = rubric.read_text(encoding="utf-8")
    bad = Proposal(
        kind="alternative", point="apple", phrase="$nosuchterm", support=9, against=0, mined_delta=0.1, heldout_delta=0.1, accepted=True
    )
    with pytest.raises(RubricErrors):
        apply_proposals(rubric, [bad])
    assert rubric.read_text(encoding="utf-8") == before


def test_too_few_rows_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("question_id,answer,score\nfruit,apple,1\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["suggest", str(DATA / "bank" / "fruit.yaml"), "--graded", str(data)])
    assert result.exit_code == 2
    assert "too few" in result.output and "Traceback" not in result.output


FLOWY = """\
# A rubric written in flow style, with comments that must survive --apply.
id: flowy
question: {en: "What does dropout do at inference?"}
max_score: 3
reference_answer: {en: Dropout is off at inference.}
key_points:
  - id: off
    statement: {en: "Dropout is off at inference."}
    match: [{all: [inference, "off"]}, 'disabled']   # keep
  - id: scale
    statement: {en: Activations are rescaled.}
    match: [{all: [activations, [rescaled, scaled]]}]
  - id: block
    statement: {en: Fewer co-adaptations.}
    match:
      - co-adaptation   # the classic term
      - {all: [units, [rely, depend]]}
scoring: {mode: count, table: [0, 1, 2, 3]}
"""


def accepted(point: str, phrase: str, kind: Literal["alternative", "exclude"] = "alternative") -> Proposal:
    return Proposal(kind=kind, point=point, phrase=phrase, support=7, against=1, mined_delta=0.02, heldout_delta=0.023, accepted=True)


def test_apply_to_flow_style_keeps_every_other_line_and_comments_each_addition(tmp_path: Path) -> None:
    # Regression: ruamel rewrote `[{all: [...]}]` as `[all: [...]]`, moved `# keep`, and left additions
    # to flow lists without their `# suggested:` comment.
    rubric = tmp_path / "flowy.yaml"
    rubric.write_text(FLOWY, encoding="utf-8")
    props = [
        accepted("off", "switched off"),
        accepted("off", "yes"),
        accepted("scale", "inverted", "exclude"),
        accepted("block", "co-adapt"),
    ]
    assert apply_proposals(rubric, props) == 4
    after = rubric.read_text(encoding="utf-8")
    lines = after.splitlines()
    # Every line but the one-line flow list that was extended is still there, byte for byte.
    extended = "    match: [{all: [inference, \"off\"]}, 'disabled']   # keep"
    assert [x for x in FLOWY.splitlines() if x != extended] == [x for x in lines if x in FLOWY.splitlines()]
    assert "    match:   # keep" in lines
    assert '      - {all: [inference, "off"]}' in lines and "      - 'disabled'" in lines
    assert "    match: [{all: [activations, [rescaled, scaled]]}]" in lines  # untouched
    suggested = [x for x in lines if "# suggested: held-out QWK +0.023, support 7" in x]
    assert [x.split("#")[0].strip() for x in suggested] == ["- switched off", '- "yes"', "- inverted", "- co-adapt"]
    # It loads, and its rules are the old ones plus the additions, nothing else.
    expected = load_rubric_text(FLOWY)
    for p in props:
        expected = with_rule(expected, p.point, p.kind, p.phrase)
    assert load_rubric(rubric).model_dump() == expected.model_dump()
    assert CliRunner().invoke(main, ["check", str(rubric)]).output.count("does not parse") == 0


def test_apply_keeps_crlf_line_endings(tmp_path: Path) -> None:
    rubric = tmp_path / "flowy.yaml"
    rubric.write_bytes(FLOWY.replace("\n", "\r\n").encode("utf-8"))
    assert apply_proposals(rubric, [accepted("block", "co-adapt")]) == 1
    data = rubric.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n") == FLOWY.count("\n") + 1


def test_apply_with_nothing_to_add_writes_nothing(tmp_path: Path) -> None:
    # Regression: with 0 proposals `--apply` said "wrote 0 proposals" and still rewrote (reformatted) the file.
    rubric = tmp_path / "flowy.yaml"
    rubric.write_text(FLOWY, encoding="utf-8")
    before = rubric.stat().st_mtime_ns
    not_chosen = accepted("off", "switched off").model_copy(update={"accepted": False})
    assert apply_proposals(rubric, [not_chosen, accepted("off", "disabled")]) == 0  # not accepted; already there
    assert rubric.read_text(encoding="utf-8") == FLOWY and rubric.stat().st_mtime_ns == before

    data = tmp_path / "d.csv"  # humans agree with the rubric: nothing to propose
    rows = [("dropout is off at inference", 1), ("co-adaptation of units", 1), ("nothing", 0)] * 20
    data.write_text("question_id,answer_id,answer,score\n" + "".join(f"flowy,r{i},{a} zq{i}x,{s}\n" for i, (a, s) in enumerate(rows)))
    result = CliRunner().invoke(main, ["suggest", str(rubric), "--graded", str(data), "--min-support", "3", "--apply"])
    assert result.exit_code == 0, result.output
    assert "wrote 0" not in result.output and "nothing written" in result.output
    assert rubric.read_text(encoding="utf-8") == FLOWY and rubric.stat().st_mtime_ns == before
