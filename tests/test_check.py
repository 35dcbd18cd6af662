"""`grader check`: broken rubrics, output formats, answer sheets and the pytest plugin."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from grader.check import CODES, CaseResult, CheckReport, Finding, check_answers, check_bank, load_answer_sheet, run_check
from grader.check_output import format_github, format_json, format_junit, format_text, render
from grader.cli import main
from grader.errors import InputError

pytest_plugins = ["pytester"]

DATA = Path(__file__).parent / "data"
BROKEN = DATA / "broken"
GOOD = DATA / "check" / "good"
WARN = DATA / "check" / "warnings"
SHEETS = DATA / "check" / "answers"

# Each broken rubric, and exactly the errors (code, line) `grader check` must report for it.
BROKEN_CASES = {
    "invalid-yaml": {("parse", 22)},
    "schema-error": {("parse", 11), ("parse", 19)},
    "no-match-rule": {("no-match-rule", 16), ("reference-below-min", 7), ("reference-below-min", 8), ("example-out-of-range", 29)},
    "rule-never-matches": {("rule-never-matches", 20)},
    "shared-alternative": {("shared-alternative", 21)},
    "misconception-matches-reference": {("misconception-matches-reference", 27), ("reference-below-min", 8)},
    "reference-below-min": {("reference-below-min", 7), ("reference-below-min", 8)},
    "missing-language": {("missing-language", 18), ("missing-language", 25)},
    "example-out-of-range": {("example-out-of-range", 35)},
    "example-assertions": {("example-met", 38), ("example-not-met", 39), ("example-misconceptions", 43)},
    "unknown-id": {("bad-range", 37), ("unknown-id", 38), ("unknown-id", 39)},
}


def failing_case(message: str, detail: list[str] | None = None) -> CaseResult:
    finding = Finding(severity="error", code="parse", message=message, file="x.yaml", line=3, detail=detail or [])
    return CaseResult(kind="rubric", suite="x", name="rubric", file="x.yaml", line=1, findings=[finding])


def errors_of(report: CheckReport) -> set[tuple[str, int | None]]:
    return {(f.code, f.line) for f in report.errors}


@pytest.mark.parametrize("name", sorted(BROKEN_CASES))
def test_each_broken_rubric_fails_with_its_errors_and_lines(name: str) -> None:
    path = BROKEN / f"{name}.yaml"
    report = check_bank([path])
    assert report.failed()
    assert errors_of(report) == BROKEN_CASES[name]
    assert all(f.file == str(path) for f in report.findings)
    assert all(f.code in CODES for f in report.findings)


def test_every_broken_file_is_in_the_table() -> None:
    names = {p.stem for p in BROKEN.glob("*.yaml")} - {"duplicate-id-a", "duplicate-id-b"}
    assert names == set(BROKEN_CASES)


def test_duplicate_ids_across_the_bank() -> None:
    report = check_bank([BROKEN / "duplicate-id-a.yaml", BROKEN / "duplicate-id-b.yaml"])
    (dup,) = report.errors
    assert dup.code == "duplicate-id"
    assert dup.file == str(BROKEN / "duplicate-id-b.yaml") and dup.line == 2
    assert "duplicate-id-a.yaml:2" in dup.message
    # each file alone is fine
    assert not check_bank([BROKEN / "duplicate-id-a.yaml"]).errors


def test_out_of_range_example_shows_the_per_point_breakdown() -> None:
    report = check_bank([BROKEN / "example-out-of-range.yaml"])
    (f,) = report.errors
    assert f.message == "examples[2] (partial): score 50 is not in the expected range [80, 100]"
    assert f.field == "examples[2]"
    assert any(line.startswith("- gap") and "missing" in line for line in f.detail)
    assert any(line.startswith("+ remedy") and "“正则”" in line for line in f.detail)


def test_example_assertions_mark_the_points_that_differ() -> None:
    report = check_bank([BROKEN / "example-assertions.yaml"])
    met = next(f for f in report.errors if f.code == "example-met")
    assert "gap is missing" in met.message
    assert any("gap" in d and "[expected met]" in d for d in met.detail)
    assert any("remedy" in d and "[expected not met]" in d for d in met.detail)
    mc = next(f for f in report.errors if f.code == "example-misconceptions")
    assert "flagged but not expected: more-epochs" in mc.message


def test_unknown_ids_get_suggestions() -> None:
    report = check_bank([BROKEN / "unknown-id.yaml"])
    messages = " ".join(f.message for f in report.errors)
    assert "did you mean remedy?" in messages and "did you mean more-epochs?" in messages


def test_good_bank_is_clean_even_when_strict() -> None:
    report = check_bank([GOOD])
    assert report.findings == []
    assert not report.failed(strict=True)
    assert report.rubrics == 2 and report.examples == 7
    kinds = {c.kind for c in report.cases}
    assert kinds == {"rubric", "reference", "example"}


def test_warnings_fail_only_when_strict() -> None:
    report = check_bank([WARN])
    assert not report.errors
    assert {(f.code, f.line) for f in report.warnings} == {
        ("bare-string", 15),
        ("bare-string", 22),
        ("id-not-filename", 3),
        ("unused-term", 11),
        ("point-uncovered", 19),
        ("misconception-untested", 25),
    }
    assert not report.failed() and report.failed(strict=True)


def test_missing_path_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        check_bank([DATA / "nope"])


# --------------------------------------------------------------------------- CLI


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", *args], env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([str(GOOD)], 0),
        ([str(BROKEN)], 1),
        ([str(WARN)], 0),
        (["--strict", str(WARN)], 1),
        ([str(DATA / "nope")], 2),
        (["--format", "xml", str(GOOD)], 2),
    ],
)
def test_cli_exit_codes(args: list[str], code: int) -> None:
    assert run_cli(*args)[0] == code


def test_cli_text_output_names_file_line_and_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA.parent.parent)
    code, out = run_cli("tests/data/broken/shared-alternative.yaml")
    assert code == 1
    assert (
        "tests/data/broken/shared-alternative.yaml:21: error [shared-alternative] shared-alternative: alternative 'early stopping' earns both"
        in out
    )
    assert out.rstrip().endswith("checked 1 rubric, 2 examples: 1 error, 0 warnings — FAILED")
    assert "Traceback" not in out


def test_cli_default_bank_comes_from_env() -> None:
    code, out = run_cli(env={"GRADER_BANK": str(GOOD)})
    assert code == 0 and "checked 2 rubrics, 7 examples: 0 errors" in out


def test_cli_output_file_gets_the_format(tmp_path: Path) -> None:
    target = tmp_path / "report.xml"
    code, out = run_cli("--format", "junit", "-o", str(target), str(BROKEN / "example-out-of-range.yaml"))
    assert code == 1
    assert "error [example-out-of-range]" in out  # the terminal gets text
    assert ET.parse(target).getroot().tag == "testsuites"


def test_cli_list_codes() -> None:
    code, out = run_cli("--list-codes")
    assert code == 0 and all(c in out for c in CODES)


# --------------------------------------------------------------------------- formats


def test_junit_is_valid_and_counts_failures() -> None:
    report = check_bank([BROKEN, GOOD])
    root = ET.fromstring(format_junit(report))
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert int(root.get("tests", "-1")) == len(cases) == len(report.cases)
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(root.get("failures", "-1")) == len(failed) == sum(1 for c in report.cases if c.failed())
    for suite in root.findall("testsuite"):
        assert int(suite.get("tests", "-1")) == len(suite.findall("testcase"))
    out_of_range = next(c for c in cases if c.get("name") == "examples[2] (partial)" and "example-out-of-range" in (c.get("file") or ""))
    failure = out_of_range.find("failure")
    assert failure is not None and failure.get("type") == "example-out-of-range"
    assert out_of_range.get("line") == "35"
    assert "- gap" in (failure.text or "")
    # a passing example is a passing testcase with its score
    passing = next(c for c in cases if c.get("classname") == "grader.check.dropout" and c.get("name") == "examples[0] (excellent)")
    assert passing.find("failure") is None
    assert "score: 100/100 (expected 90..100)" in (passing.findtext("system-out") or "")


def test_junit_warnings_are_output_unless_strict() -> None:
    report = check_bank([WARN])
    relaxed = ET.fromstring(format_junit(report))
    assert relaxed.get("failures") == "0"
    assert "warning: " in "".join(relaxed.itertext())
    strict = ET.fromstring(format_junit(report, strict=True))
    assert strict.get("failures") == "1"


def test_junit_survives_control_characters() -> None:
    report = CheckReport(rubrics=1)
    report.cases.append(
        failing_case('weird \x00\x07 text <tag> & "quotes"', detail=["\x1b[31mred\x1b[0m"]),
    )
    root = ET.fromstring(format_junit(report))
    failure = root.find("./testsuite/testcase/failure")
    assert failure is not None and '<tag> & "quotes"' in (failure.get("message") or "")


def test_github_annotations_point_at_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA.parent.parent)
    out = format_github(check_bank(["tests/data/broken/example-out-of-range.yaml"]))
    lines = out.splitlines()
    assert lines[0].startswith(
        "::error file=tests/data/broken/example-out-of-range.yaml,line=35,title=grader check%3A example-out-of-range::"
    )
    assert "%0A- gap" in lines[0]  # the breakdown rides along, escaped
    assert lines[-1].startswith("checked 1 rubric")


def test_github_warnings_become_errors_when_strict() -> None:
    report = check_bank([WARN])
    assert all(line.startswith("::warning ") for line in format_github(report).splitlines()[:-1])
    assert all(line.startswith("::error ") for line in format_github(report, strict=True).splitlines()[:-1])


def test_github_paths_are_relative_to_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA.parent.parent)
    out = format_github(check_bank([(BROKEN / "shared-alternative.yaml").resolve()]))
    assert out.startswith("::error file=tests/data/broken/shared-alternative.yaml,line=21,")


@given(st.text())
def test_github_annotation_is_one_line_and_round_trips(message: str) -> None:
    report = CheckReport()
    report.cases.append(failing_case(message))
    first = format_github(report).split("\n")[0]
    body = first.split("::", 2)[2]
    decoded = body.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
    assert decoded == message


def test_json_output() -> None:
    data = json.loads(format_json(check_bank([BROKEN / "reference-below-min.yaml"])))
    assert data["ok"] is False and data["errors"] == 2 and data["rubrics"] == 1
    ref = [c for c in data["cases"] if c["kind"] == "reference"]
    assert [c["name"] for c in ref] == ["reference_answer.zh", "reference_answer.en"]
    assert ref[0]["score"] == 66.7


def test_render_rejects_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(CheckReport(), "yaml")


# --------------------------------------------------------------------------- answer sheets


def test_answer_sheet_reports_the_gaps_of_a_crib_note_sheet() -> None:
    report = check_answers([GOOD], SHEETS / "sheet.yaml")
    by_case = {c.name: c for c in report.cases}
    l1 = by_case["l1-l2-regularization"]
    assert l1.failed() and l1.score is not None and l1.score < 50
    codes = {f.code for f in l1.findings}
    assert codes == {"answer-below-min", "answer-misconception"}
    below = next(f for f in l1.findings if f.code == "answer-below-min")
    assert below.line == 3
    assert any(d.startswith("missing penalty-on-weights:") for d in below.detail)
    assert any("misconception l1-is-mae" in d for d in below.detail)
    assert not by_case["dropout"].failed()
    text = format_text(report)
    assert "l1-l2-regularization  10/100  FAIL" in text
    assert "dropout               100/100  ok" in text


def test_min_score_threshold() -> None:
    report = check_answers([GOOD], SHEETS / "sheet.yaml", min_score=0)
    # below-min is gone, but a misconception in a model answer is still an error
    assert {f.code for f in report.errors} == {"answer-misconception"}


def test_jsonl_sheet_with_unknown_id_and_unanswered_questions(tmp_path: Path) -> None:
    report = check_answers([GOOD], SHEETS / "sheet.jsonl")
    (err,) = report.errors
    assert err.code == "unknown-question" and err.line == 2 and "did you mean dropout?" in err.message
    sheet = tmp_path / "one.yaml"
    sheet.write_text("dropout: 'Dropout reduces overfitting: units are randomly dropped in training, and it is off at inference.'\n")
    partial = check_answers([GOOD], sheet)
    assert not partial.errors
    assert [(f.code, f.rubric_id) for f in partial.warnings] == [("unanswered", "l1-l2-regularization")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"id": "dropout", "answer": "x"}\nnot json\n', "bad.jsonl:2: invalid JSON"),
        ("keys.jsonl", '{"question": "dropout", "answer": "x"}\n', 'keys.jsonl:1: each line must be an object {"id"'),
        ("twice.jsonl", '{"id": "a", "answer": "x"}\n{"id": "a", "answer": "y"}\n', "twice.jsonl:2: question 'a' is answered twice"),
        ("list.yaml", "- dropout\n", "list.yaml:1: an answer sheet is a mapping"),
        ("nested.yaml", "dropout:\n  answer: x\n", "nested.yaml:1: dropout: the answer must be text"),
        ("dup.yaml", "dropout: a\ndropout: b\n", "dup.yaml:2: invalid YAML: duplicate key 'dropout'"),
    ],
)
def test_malformed_sheets_name_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_answer_sheet(path)
    assert str(exc.value).startswith(f"{path.parent}/{message}") or message in str(exc.value)
    code, out = run_cli(str(GOOD), "--answers", str(path))
    assert code == 2 and message.split(":", 1)[1].strip()[:20] in out and "Traceback" not in out


def test_cli_answers_min_score_envvar() -> None:
    code, _ = run_cli(str(GOOD), "--answers", str(SHEETS / "sheet.yaml"))
    assert code == 1
    fine = Path(__file__).parent / "data" / "check" / "answers" / "sheet.jsonl"
    code, out = run_cli(str(GOOD), "--answers", str(fine), env={"GRADER_MIN_SCORE": "0"})
    assert code == 1 and "unknown-question" in out  # the bad id still fails


def test_example_sheet_in_the_seed_style_parses() -> None:
    # The sheet under examples/ targets the built-in bank (written separately); here we only
    # check its shape. Its gaps are reported by `grader check --answers` on the real bank.
    entries = load_answer_sheet(Path(__file__).parent.parent / "examples" / "answer-sheet-seed-style.yaml")
    assert len(entries) == 15
    assert "Σ|y_i - f(x_i)|" in entries[0].answer


def test_example_sheet_l1_entry_is_caught_by_a_rubric_with_the_mae_misconception(tmp_path: Path) -> None:
    sheet = load_answer_sheet(Path(__file__).parent.parent / "examples" / "answer-sheet-seed-style.yaml")
    l1 = next(e for e in sheet if e.question_id == "l1-l2-regularization")
    one = tmp_path / "l1.yaml"
    one.write_text(json.dumps({l1.question_id: l1.answer}, ensure_ascii=False), encoding="utf-8")
    report = run_check([GOOD / "l1-l2-regularization.yaml"], answers=one)
    assert {f.code for f in report.errors} == {"answer-below-min", "answer-misconception"}


# --------------------------------------------------------------------------- pytest plugin


def glob_lines(*lines: str) -> list[str]:
    """fnmatch patterns for lines that contain `[`: brackets are literal."""
    return [line.replace("[", "[[]") for line in lines]


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert eps.get("grader") == "grader.pytest_plugin"


def test_plugin_collects_examples_and_explains_failures(pytester: pytest.Pytester) -> None:
    bank = pytester.path / "rubrics"
    bank.mkdir()
    shutil.copy(GOOD / "dropout.yaml", bank)
    shutil.copy(BROKEN / "example-out-of-range.yaml", bank)
    shutil.copy(BROKEN / "schema-error.yaml", bank)
    (bank / "notes.yaml").write_text("just: some yaml\n")  # not a rubric: not collected
    result = pytester.runpytest("rubrics", "-p", "no:cacheprovider")
    # dropout: rubric + 4 examples; out-of-range: rubric + 3 examples (one fails); schema-error: parse fails
    result.assert_outcomes(passed=8, failed=2)
    result.stdout.fnmatch_lines(
        glob_lines(
            "*rubrics/example-out-of-range.yaml:35: example-out-of-range examples[2] (partial)",
            "*expected: score in [80, 100]",
            "*got:      score 50",
            "*[example-out-of-range] score 50 is not in the expected range [80, 100]",
            "*points (+ met, ~ partial, - missing, x contradicted):",
            "*- gap*missing*",
            "*+ remedy*met*",
        )
    )
    result.stdout.fnmatch_lines(glob_lines("*rubric does not parse:*", "*schema-error.yaml:11: key_points[0].weight: must be > 0"))
    assert "Traceback" not in result.stdout.str()


def test_plugin_rubrics_option_and_strict_warnings(pytester: pytest.Pytester) -> None:
    bank = pytester.path / "bank"
    bank.mkdir()
    shutil.copy(WARN / "overfit.yaml", bank)
    relaxed = pytester.runpytest("--rubrics", "bank", "-p", "no:cacheprovider")
    relaxed.assert_outcomes(passed=2, warnings=6)
    relaxed.stdout.fnmatch_lines(glob_lines("*overfit.yaml:15: RubricCheckWarning: [bare-string]*"))
    strict = pytester.runpytest("--rubrics", "bank", "--rubrics-strict", "-p", "no:cacheprovider")
    strict.assert_outcomes(passed=1, failed=1)
    strict.stdout.fnmatch_lines(glob_lines("*[point-uncovered] key point 'remedy' is met by no example*"))


def test_plugin_rubrics_outside_the_project_keep_its_rootdir_and_config(pytester: pytest.Pytester) -> None:
    # Regression: pytest took `--rubrics DIR` for a test path before the plugin was loaded, so a DIR
    # outside the project moved rootdir to the common parent and dropped the project's config:
    # `norecursedirs` was ignored and the project's fixture rubrics were collected too.
    pytester.makeini("[pytest]\nnorecursedirs = data\n")
    (pytester.path / "data").mkdir()
    shutil.copy(BROKEN / "schema-error.yaml", pytester.path / "data")
    pytester.makepyfile("def test_ok():\n    assert True\n")
    outside = pytester.path.parent / f"{pytester.path.name}-extbank"
    outside.mkdir()
    shutil.copy(GOOD / "dropout.yaml", outside)
    result = pytester.runpytest("--rubrics", str(outside), "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([f"rootdir: {pytester.path}", "configfile: tox.ini"])
    result.assert_outcomes(passed=6)  # test_ok + dropout's rubric and 4 examples; nothing from data/
    assert "schema-error" not in result.stdout.str()


def test_plugin_leaves_ordinary_yaml_and_tests_alone(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", config="key: value\nkey_points_like: 1\n")
    pytester.makepyfile("def test_ok():\n    assert True\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_plugin_rubrics_option_needs_an_existing_folder(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rubrics", "nowhere", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--rubrics: no such folder: nowhere*"])
