"""`grader check -`: one rubric read from standard input (`grader draft … | grader check -`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.check import check_answers, check_bank
from grader.cli import main
from grader.errors import InputError

DATA = Path(__file__).parent / "data"
GOOD = DATA / "check" / "good"
BROKEN = DATA / "broken"
SHEETS = DATA / "check" / "answers"


def check(*args: str, stdin: str | bytes) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["check", *args], input=stdin)
    assert "Traceback" not in res.output
    return res.exit_code, res.output


def test_a_good_rubric_on_stdin_passes_like_its_file() -> None:
    text = (GOOD / "dropout.yaml").read_text(encoding="utf-8")
    code, out = check("-", stdin=text)
    assert code == 0, out
    assert "checked 1 rubric, 4 examples: 0 errors, 0 warnings — ok" in out
    file_report = check_bank([GOOD / "dropout.yaml"])
    stdin_report = check_bank(["-"], stdin=text)
    assert stdin_report.rubrics == file_report.rubrics == 1 and stdin_report.examples == file_report.examples
    assert [(c.kind, c.name, c.score) for c in stdin_report.cases] == [(c.kind, c.name, c.score) for c in file_report.cases]


def test_stdin_has_no_file_name_to_disagree_with_the_id() -> None:
    text = (GOOD / "dropout.yaml").read_text(encoding="utf-8").replace("id: dropout", "id: a-drafted-rubric", 1)
    report = check_bank(["-"], stdin=text)
    assert "id-not-filename" not in {f.code for f in report.findings}
    assert not report.failed(strict=True)


def test_a_broken_rubric_on_stdin_fails_with_stdin_lines() -> None:
    code, out = check("-", stdin=(BROKEN / "schema-error.yaml").read_bytes())
    assert code == 1, out
    assert "<stdin>:11: error [parse]" in out and "<stdin>:19: error [parse]" in out
    code, out = check("-", "--format", "json", stdin=(BROKEN / "unknown-id.yaml").read_text(encoding="utf-8"))
    assert code == 1
    found = {(f["code"], f["line"], f["file"]) for case in json.loads(out)["cases"] for f in case["findings"]}
    assert ("unknown-id", 38, "<stdin>") in found


def test_stdin_alongside_a_bank_finds_a_duplicate_id() -> None:
    text = (GOOD / "dropout.yaml").read_text(encoding="utf-8")
    code, out = check(str(GOOD), "-", stdin=text)
    assert code == 1
    assert "duplicate-id" in out and "<stdin>" in out


def test_stdin_rubric_grades_an_answer_sheet() -> None:
    texts = [(GOOD / name).read_text(encoding="utf-8") for name in ("dropout.yaml", "l1-l2-regularization.yaml")]
    from_files = check_answers([GOOD], SHEETS / "sheet.yaml")
    one = check_answers(["-", GOOD / "l1-l2-regularization.yaml"], SHEETS / "sheet.yaml", stdin=texts[0])
    assert [(c.name, c.score) for c in one.cases] == [(c.name, c.score) for c in from_files.cases]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["-"], "", "no rubric on standard input"),
        (["-"], "  \n", "no rubric on standard input"),
        (["-", "-"], "id: x\n", "standard input can be given once"),
        (["-"], "id: \xe4\xb8".encode("latin-1"), "<stdin>: not UTF-8 text"),
    ],
)
def test_bad_stdin_is_a_usage_error(args: list[str], stdin: str | bytes, message: str) -> None:
    code, out = check(*args, stdin=stdin)
    assert code == 2 and message in out


def test_library_without_stdin_text_says_so() -> None:
    with pytest.raises(InputError, match="no rubric on standard input"):
        check_bank(["-"])
