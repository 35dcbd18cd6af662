"""The CLI: readable output, JSON, exit codes, friendly errors (never a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main

CORE = Path(__file__).parent / "data" / "core"


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=input, env={"GRADER_BANK": str(CORE)})
    return result.exit_code, result.output


def test_grade_prints_score_evidence_hints_and_corrections() -> None:
    code, out = run(
        "grade",
        "dropout-mini",
        "--answer",
        "Dropout randomly drops units in training. At test time it is still used and randomly drops units.",
    )
    assert code == 0
    assert "Score: 10 / 100  (10%)" in out
    assert "✔ Earned" in out and "“randomly drops”" in out
    assert "✘ Missing" in out and "hint: Which problem does it fight?" in out
    assert "⚠ Misconceptions" in out and "Dropout is switched off at inference." in out and "(−20)" in out


def test_grade_feedback_follows_the_answer_language() -> None:
    code, out = run("grade", "dropout-mini", "--answer", "训练时随机丢弃神经元")
    assert code == 0
    assert "得分: 30 / 100" in out and "未答到" in out and "提示: 它解决什么问题？" in out


def test_lang_option_overrides() -> None:
    _, out = run("grade", "dropout-mini", "--lang", "en", "--answer", "训练时随机丢弃神经元")
    assert "Score: 30 / 100" in out


def test_grade_json_is_the_result_model() -> None:
    code, out = run("grade", "dropout-mini", "--json", "--answer", "推理时关闭")
    assert code == 0
    data = json.loads(out)
    assert data["rubric_id"] == "dropout-mini"
    assert data["score"] == 25.0 and data["percent"] == 25.0
    assert data["engine"] == "matcher" and len(data["rubric_version"]) == 12
    assert {p["id"]: p["status"] for p in data["points"]}["inference-off"] == "met"
    assert [m["id"] for m in data["missing"]] == ["random-drop", "regularize", "scaling"]


def test_answer_from_file_and_stdin(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("推理时关闭", encoding="utf-8")
    assert "25 / 100" in run("grade", "dropout-mini", str(f))[1]
    assert "25 / 100" in run("grade", "dropout-mini", "-", input="推理时关闭")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grade", "dropot", "--answer", "x"], "unknown rubric id 'dropot'. Did you mean: dropout-mini"),
        (["grade", "dropout-mini", "--answer", "   "], "the answer is empty"),
        (["grade", "dropout-mini", "missing.txt"], "answer file not found: missing.txt"),
        (["grade", "dropout-mini", "f.txt", "--answer", "x"], "not both"),
        (["grade", "dropout-mini", "--bank", "/nonexistent", "--answer", "x"], "bank not found: /nonexistent"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    code, out = run(*args)
    assert code == 2
    assert message in out
    assert "Traceback" not in out


def test_broken_bank_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("id: x\nquestion: {en: q}\nkey_points: []\n", encoding="utf-8")
    code, out = run("grade", "x", "--bank", str(tmp_path), "--answer", "a")
    assert code == 2
    assert f"{tmp_path / 'x.yaml'}:3: key_points: must have at least 1 item" in out


def test_list_shows_questions() -> None:
    code, out = run("list")
    assert code == 0
    assert "dropout-mini" in out and "count-mini" in out


def test_real_process_exit_codes(tmp_path: Path) -> None:
    env = {"GRADER_BANK": str(CORE), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "dropout-mini", "--answer", "推理时关闭"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0 and "25 / 100" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "grader", "grade", "nope", "--answer", "x"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("Error: unknown rubric id 'nope'")
    assert "Traceback" not in bad.stderr


def test_list_unknown_tag_names_the_tags() -> None:
    code, out = run("list", "--tag", "nosuch")
    assert code == 2
    assert "no question has the tag 'nosuch'; tags in this bank: regularization" in out


# --------------------------------------------------------------------------- stdout closed early (`| head -1`)


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--list-codes"],  # printed `Error: [Errno 32] Broken pipe` and exited 2
        ["list", "--bank", str(CORE)],  # exited 1 (rich's own broken-pipe exit)
        ["check", "--format", "json", str(CORE)],  # exited 0 or 1 depending on when the pipe closed
        ["grade", "dropout-mini", "--bank", str(CORE), "--answer", "Dropout randomly drops units."],
        ["--help"],
    ],
    ids=["check-list-codes", "list", "check-json", "grade", "help"],
)
def test_closed_stdout_exits_141_quietly(args: list[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "grader", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the first write, as `head -1` does after one line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""  # no `Broken pipe`, no `Exception ignored`, no traceback
