"""Rubric loading: strict models, and errors that name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import RubricErrors, load_bank, load_rubric, parse_rubric
from grader.errors import UnknownRubricError

GOOD = """\
id: t
question: {zh: 问题, en: question}
key_points:
  - id: a
    weight: 2
    statement: {zh: 甲, en: a}
    match: [alpha]
  - id: b
    statement: {zh: 乙, en: b}
    match: [beta]
"""


def errors_of(text: str, source: str = "rubrics/t.yaml") -> list[str]:
    with pytest.raises(RubricErrors) as info:
        parse_rubric(text, source=source)
    return [str(e) for e in info.value.errors]


def test_good_rubric_parses() -> None:
    r = parse_rubric(GOOD)
    assert [kp.id for kp in r.key_points] == ["a", "b"]
    assert r.max_score == 100
    assert r.languages == {"zh", "en"}
    assert len(r.version) == 12


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (GOOD.replace("weight: 2", "weight: 0"), "rubrics/t.yaml:5: key_points[0].weight: must be > 0"),
        (GOOD.replace("weight: 2", "wieght: 2"), "rubrics/t.yaml:5: key_points[0].wieght: unknown key 'wieght'"),
        (GOOD.replace("  - id: b\n", "  - id: a\n"), "rubrics/t.yaml:8: key_points[1].id: duplicate id 'a' (also key_points[0].id)"),
        (
            GOOD.replace("match: [beta]", "match: [beta, {all: [x, $nope]}]"),
            "rubrics/t.yaml:10: key_points[1].match[1]: unknown term $nope",
        ),
        (GOOD + "terms:\n  x: [a, $y]\n  y: [$x]\n", "rubrics/t.yaml:13: terms.y[0]: term $x refers to itself"),
        (GOOD + "scoring: {mode: count, table: [0, 1, 2]}\n", "rubrics/t.yaml:11: scoring.table: must end at max_score (100)"),
        (GOOD.replace("weight: 2", "weight: .inf"), "rubrics/t.yaml:5: key_points[0].weight: must be a finite number"),
        ("id: &a t\nquestion: *a\n", "rubrics/t.yaml:1: invalid YAML: anchors and aliases"),
        ("? [a, b]\n: 1\n", "rubrics/t.yaml:1: invalid YAML: mapping keys must be plain words"),
        (GOOD.replace("id: t\n", "id: Bad Id\n"), "rubrics/t.yaml:1: id: must be a slug"),
        (GOOD.replace("match: [beta]", "match: [$nope]"), "unknown term $nope"),
        (GOOD.replace("match: [beta]", "match: [{regex: '(unclosed'}]"), "rubrics/t.yaml:10: key_points[1].match[0].regex: invalid regex"),
        (GOOD.replace("match: [beta]", "match: [{all: [x]}]"), "rubrics/t.yaml:10: key_points[1].match[0].all: must have at least 2 items"),
        (GOOD + "examples:\n  - {answer: x, score: [50, 10]}\n", "rubrics/t.yaml:12: examples[0].score: low must be <= high"),
        (GOOD.replace("question: {zh: 问题, en: question}\n", ""), "rubrics/t.yaml:1: question: missing required field"),
        ("id: t\nid: u\n", "rubrics/t.yaml:2: invalid YAML: duplicate key 'id' (first on line 1)"),
        ("id: [unclosed\n", "rubrics/t.yaml:2: invalid YAML"),
        ("- just\n- a list\n", "rubrics/t.yaml:1: a rubric must be a YAML mapping"),
        (GOOD + "scoring: {mode: count, table: [0, 60, 50, 100]}\n", "scoring.table: must not decrease"),
    ],
)
def test_errors_name_file_line_and_field(broken: str, expected: str) -> None:
    errs = errors_of(broken)
    assert any(expected in e for e in errs), errs


def test_all_errors_are_reported_at_once() -> None:
    broken = GOOD.replace("weight: 2", "weight: -1").replace("match: [beta]", "match: [beta]\n    colour: red")
    errs = errors_of(broken)
    assert len(errs) == 2


def test_on_off_yes_no_stay_strings() -> None:
    r = parse_rubric(GOOD.replace("match: [beta]", "match: [off, on, yes, no]"))
    assert r.key_points[1].match == ["off", "on", "yes", "no"]


def test_load_rubric_reports_the_real_path(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(GOOD.replace("weight: 2", "weight: 0"), encoding="utf-8")
    with pytest.raises(RubricErrors, match=r"bad\.yaml:5: key_points\[0\]\.weight"):
        load_rubric(f)


def test_bank_lookup_and_suggestions(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "_notes.yaml").write_text("not: a rubric", encoding="utf-8")  # skipped: leading underscore
    bank = load_bank(tmp_path)
    assert list(bank) == ["t"]
    assert bank["t"].id == "t"
    with pytest.raises(UnknownRubricError) as info:
        bank["tt"]
    assert info.value.suggestions == ["t"]


def test_bank_rejects_duplicate_ids(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(RubricErrors, match="duplicate rubric id 't'"):
        list(load_bank(tmp_path))
