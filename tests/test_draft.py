"""`grader draft`: the draft parses, passes `grader check`, grades its own reference, and says what to review."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import grade, load_rubric, parse_rubric
from grader.check import run_check
from grader.cli import main
from grader.draft import glossary, key_concepts, split_clauses

CASES = [
    (
        "zh",
        "简述顺序表和链表存储方式的特点",
        "顺序表的存储空间连续，支持随机访问，按下标进行访问时时间复杂度为O（1），但在数据量不确定的情况下容易造成内存浪费或者元素溢出。"
        "链表的存储空间不连续，不支持随机访问，对数据进行操作的时候需要从头开始遍历，最坏情况为O（n），但是链表没有空间限制，不会溢出也不会产生内存浪费。",
    ),
    (
        "en",
        "What does dropout do, and how is it used at inference?",
        "Dropout randomly zeroes activations during training, which reduces overfitting. At inference dropout is turned off and all neurons are used.",
    ),
    ("zh", "栈和队列有什么区别？", "栈是后进先出的线性表，只能在栈顶插入和删除；队列是先进先出的，在队尾入队、队头出队。"),
    (
        "en",
        "Why use a validation set?",
        "A validation set is held out from training to tune hyperparameters and detect overfitting without touching the test set.",
    ),
]


@pytest.mark.parametrize(("lang", "question", "reference"), CASES)
def test_draft_parses_passes_check_and_grades_its_reference(tmp_path: Path, lang: str, question: str, reference: str) -> None:
    out = tmp_path / "draft.yaml"
    result = CliRunner().invoke(main, ["draft", "--question", question, "--reference", reference, "--id", "draft", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    rubric = parse_rubric(text, source=str(out))
    assert rubric.question.get(lang) == question
    assert len(rubric.key_points) >= 2
    assert grade(rubric, reference).percent >= rubric.reference_min
    report = run_check([out])
    assert not report.failed(strict=False), [f.message for f in report.findings]
    assert "# REVIEW:" in text
    # An off-topic answer earns (almost) nothing.
    assert grade(rubric, "I like turtles. 今天天气很好。").percent <= 20


def test_glossary_synonyms_become_term_bundles() -> None:
    text = CliRunner().invoke(main, ["draft", "-q", "栈的特点？", "-r", "栈是后进先出的结构，只能在栈顶进行插入和删除。"]).output
    rubric = parse_rubric(text, source="<stdout>")
    bundles = {k: set(v) for k, v in rubric.terms.items()}
    assert any({"后进先出", "lifo", "先进后出"} <= v for v in bundles.values())
    # A synonym from the glossary earns the point the reference's own word earned.
    assert grade(rubric, "stack is LIFO: push and pop only at the top of stack (栈顶), insertion and deletion there").score > 0


def test_reference_from_a_file_and_stdin(tmp_path: Path) -> None:
    ref = tmp_path / "ref.txt"
    ref.write_text("Batch normalization normalizes activations per mini-batch, which stabilizes training.", encoding="utf-8")
    runner = CliRunner()
    from_file = runner.invoke(main, ["draft", "-q", "What is batch norm?", "-r", str(ref)])
    from_stdin = runner.invoke(main, ["draft", "-q", "What is batch norm?", "-r", "-"], input=ref.read_text(encoding="utf-8"))
    assert from_file.exit_code == 0 and from_stdin.exit_code == 0
    assert from_file.output == from_stdin.output
    assert "stabilizes training" in from_file.output


def test_split_clauses_and_key_concepts() -> None:
    clauses = split_clauses("顺序表的存储空间连续，支持随机访问。链表不支持随机访问。")
    assert clauses == ["顺序表的存储空间连续", "支持随机访问", "链表不支持随机访问"]
    concepts = key_concepts("链表不支持随机访问")
    negated = [c for c in concepts if c.negated]
    assert negated and negated[0].text.startswith("不")  # the negation stays with the term
    assert len(split_clauses("a. b. c. d. e. f. g. h.", max_points=3)) <= 3


def test_glossary_is_package_data_and_well_formed() -> None:
    entries = glossary()
    assert len(entries) >= 100
    keys = [e.key for e in entries]
    assert len(keys) == len(set(keys))
    assert all(len(e.phrases) >= 2 for e in entries)


def test_bad_input_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["draft", "-q", "Q?", "-r", "   "])
    assert result.exit_code == 2 and "non-empty" in result.output


def test_judge_that_cannot_draft_is_a_clean_error() -> None:
    try:
        from grader import judge
    except ImportError:
        expected = "--judge needs the LLM judge"
    else:
        if hasattr(judge, "draft_rubric"):
            pytest.skip("this judge drafts; its own tests cover it")
        expected = "this judge cannot draft rubrics"
    result = CliRunner().invoke(main, ["draft", "-q", "Q?", "-r", "Some reference.", "--judge"])
    assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output


def test_drafts_load_as_a_bank(tmp_path: Path) -> None:
    for i, (_, question, reference) in enumerate(CASES):
        result = CliRunner().invoke(main, ["draft", "-q", question, "-r", reference, "--id", f"d{i}", "-o", str(tmp_path / f"d{i}.yaml")])
        assert result.exit_code == 0, result.output
    assert [load_rubric(tmp_path / f"d{i}.yaml").id for i in range(len(CASES))] == ["d0", "d1", "d2", "d3"]
