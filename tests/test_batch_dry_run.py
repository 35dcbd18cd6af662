"""`grader batch --dry-run`: every row read and checked, counts that match a real run, and nothing
written to --out (not even the folder). With --judge, an estimate and no request."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from judge_server import ScriptedServer, keyword_judge

from grader.batch import (
    RESULTS_JSONL,
    BatchConflict,
    BatchOptions,
    DryRunSummary,
    detect_encoding,
    dry_run_batch,
    run_batch,
)
from grader.cli import main

DATA = Path(__file__).parent / "data"
BANK = DATA / "core"  # dropout-mini and count-mini
JUDGE_BANK = DATA / "judge"  # dropout-mini: 4 points, 1 misconception

GOOD = "Dropout randomly drops units while training, a regularizer against overfitting. At test time it is turned off."
ZH = "训练时随机丢弃神经元，起到正则化作用，减少过拟合；推理时关闭 dropout。"

# The judge tests' paraphrase: the matcher leaves two points open, so the review policy asks the judge.
PARAPHRASE = "Dropout randomly drops units during training to reduce overfitting. Once deployed we stop using it."
# Every point met by the matcher: the review policy asks the judge nothing.
FULL = "Dropout randomly drops units while training, a regularizer against overfitting. At test time it is turned off; inverted dropout scales by 1/(1-p)."
KEYWORDS = {"random-drop": ["randomly drops"], "regularize": ["overfitting"], "inference-off": ["stop using it"], "scaling": ["1/(1-p)"]}


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("GRADER_MODEL", "OPENAI_BASE_URL", "GRADER_JUDGE_POLICY", "GRADER_PRICES", "OPENAI_API_KEY", "GRADER_JUDGE", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]] | None:
    """Every file under `folder` with its bytes and mtime (None when the folder does not exist)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def bad_cohort(path: Path) -> Path:
    """11 rows: 4 gradable answers (2 identical after normalisation), 1 too long, 6 that cannot be graded."""
    lines = [
        "student,question,answer",
        f's1,dropout-mini,"{GOOD}"',  # row 2
        f's2,dropout-mini,"{GOOD.upper()}"',  # row 3: the same answer after normalisation (graded once)
        f"s3,dropout-mini,{ZH}",  # row 4
        "s4,count-mini,seed code and data",  # row 5
        f's5,dropout-mini,"{GOOD + " filler" * 100}"',  # row 6: too long, graded truncated
        "s6,,no question",  # row 7: missing_question
        "s7,dropout-minni,typo in the id",  # row 8: unknown_question
        "s8,count-mini,   ",  # row 9: empty_answer
        "s9,count-mini,one,too,many",  # row 10: ragged
        ",dropout-mini,no student",  # row 11: missing_student
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8") + b"s10,dropout-mini,\xff\xfe broken bytes\n"  # row 12: undecodable
    path.write_bytes(data)
    return path


def opts(inputs: list[Path], out: Path, **kw: Any) -> BatchOptions:
    return BatchOptions(inputs=inputs, out=out, bank=kw.pop("bank", BANK), workers=1, progress=False, **kw)


def agrees(dry: DryRunSummary, real: Any) -> None:
    """The dry run predicted what the run then did."""
    assert dry.rows == real.rows and dry.resumed == real.resumed and dry.to_grade == real.graded
    assert dry.unique == real.unique and dict(dry.errors) == dict(real.errors)
    assert dry.failed == real.failed and dry.truncated == real.truncated and dry.exit_code == real.exit_code
    assert dry.encodings == real.encodings


# --------------------------------------------------------------------------- counts, bad rows, nothing written


def test_bad_rows_counted_per_question_nothing_written(tmp_path: Path) -> None:
    inp = bad_cohort(tmp_path / "cohort.csv")
    out = tmp_path / "out"
    dry = dry_run_batch(opts([inp], out, max_chars=500))
    assert not out.exists()  # not even the folder
    assert dry.rows == 11 and dry.resumed == 0 and dry.to_grade == 5 and dry.unique == 4 and dry.deduplicated == 1
    assert dict(dry.errors) == {
        "too_long": 1,
        "missing_question": 1,
        "unknown_question": 1,
        "empty_answer": 1,
        "ragged": 1,
        "missing_student": 1,
        "undecodable": 1,
    }
    assert dry.failed == 6 and dry.truncated == 1 and dry.exit_code == 3
    per_q = {q: (p.rows, p.done, p.to_grade, p.unique, p.bad) for q, p in dry.questions.items()}
    # dropout-mini: rows 2, 3, 4, 6 gradable (2 and 3 identical), rows 11 and 12 bad; count-mini: row 5, rows 9 and 10 bad.
    assert per_q == {"dropout-mini": (6, 0, 4, 3, 2), "count-mini": (3, 0, 1, 1, 2)}
    bad = {b.row: (b.error, b.graded) for b in dry.bad_rows}
    assert bad[6] == ("too_long", True) and bad[8] == ("unknown_question", False) and bad[10] == ("ragged", False)
    assert "did you mean: dropout-mini" in next(b.reason for b in dry.bad_rows if b.row == 8).lower()
    # The run then does exactly what the dry run said.
    agrees(dry, run_batch(opts([inp], out, max_chars=500, report=False)))


def test_cli_summary_and_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = CliRunner()
    bad = runner.invoke(main, ["batch", str(bad_cohort(tmp_path / "c.csv")), "--out", str(out), "--bank", str(BANK), "--dry-run"])
    assert bad.exit_code == 3, bad.output
    assert bad.stdout == ""  # like a run: the summary goes to stderr
    text = bad.stderr
    assert f"dry run: nothing graded, nothing written to {out}/" in text
    assert "rows: 11  already done: 0  to grade: 5  distinct answers: 4  identical copies graded once: 1" in text
    assert "c.csv:10 ragged: 5 fields, the header has 3" in text and "c.csv:12 undecodable" in text
    assert "a run would exit 3: 6 rows could not be graded" in text
    assert "Traceback" not in text and not out.exists()

    good = tmp_path / "good.csv"
    good.write_text(f'student,question,answer\ns1,dropout-mini,"{GOOD}"\ns2,count-mini,seed\n', encoding="utf-8")
    ok = runner.invoke(main, ["batch", str(good), "--out", str(out), "--bank", str(BANK), "--dry-run"])
    assert ok.exit_code == 0, ok.output
    assert "a run would exit 0: every row can be graded" in ok.stderr and not out.exists()


def test_many_bad_rows_are_counted_and_the_first_are_listed(tmp_path: Path) -> None:
    inp = tmp_path / "c.csv"
    inp.write_text("student,question,answer\n" + "".join(f"s{i},nope,x\n" for i in range(50)), encoding="utf-8")
    dry = dry_run_batch(opts([inp], tmp_path / "out"))
    assert dry.errors["unknown_question"] == 50 and dry.bad_found == 50 and len(dry.bad_rows) == 20
    res = CliRunner().invoke(main, ["batch", str(inp), "--out", str(tmp_path / "out"), "--bank", str(BANK), "--dry-run"])
    assert res.exit_code == 3 and "… and 30 more" in res.stderr


def test_gbk_export_detected_with_its_broken_row(tmp_path: Path) -> None:
    """A GBK file from a Chinese tool, Chinese headers, one row with bytes GBK cannot decode."""
    inp = tmp_path / "导出.csv"
    rows = [
        ("学号", "题号", "答案"),
        ("张三", "dropout-mini", ZH),
        ("李四", "dropout-mini", ZH),
        ("王五", "count-mini", "随机种子、代码和数据"),
    ]
    data = "".join(",".join(r) + "\n" for r in rows).encode("gbk") + "赵六,dropout-mini,".encode("gbk") + b"\x80\xff\n"
    inp.write_bytes(data)
    assert detect_encoding(inp) == "gb18030"  # one broken row does not make the whole file "UTF-8"
    out = tmp_path / "out"
    dry = dry_run_batch(opts([inp], out))
    assert dry.encodings == {"导出.csv": "gb18030"} and not out.exists()
    assert dry.rows == 4 and dry.to_grade == 3 and dry.unique == 2 and dict(dry.errors) == {"undecodable": 1}
    assert [(b.row, b.student_id) for b in dry.bad_rows] == [(5, "赵六")]
    assert "not valid gb18030 (the encoding detected for this file)" in dry.bad_rows[0].reason and "--encoding" in dry.bad_rows[0].reason
    agrees(dry, run_batch(opts([inp], out, report=False)))


# --------------------------------------------------------------------------- resume


def test_partial_out_counts_rows_done_and_is_left_untouched(tmp_path: Path) -> None:
    inp = bad_cohort(tmp_path / "cohort.csv")
    out = tmp_path / "out"
    run_batch(opts([inp], out, max_chars=500, report=False))
    # A crash: results.jsonl keeps 2 whole lines and a line cut short.
    lines = (out / RESULTS_JSONL).read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) == 5
    (out / RESULTS_JSONL).write_text("".join(lines[:2]) + lines[2][:40], encoding="utf-8")
    kept = {(json.loads(line)["row"]) for line in lines[:2]}
    before = snapshot(out)

    dry = dry_run_batch(opts([inp], out, max_chars=500))
    assert snapshot(out) == before  # the torn line is not repaired, no file touched, nothing added
    assert dry.resuming and dry.resumed == 2 and dry.to_grade == 3
    assert sum(p.done for p in dry.questions.values()) == 2
    assert dry.errors["too_long"] == 1 and dry.failed == 6  # the earlier run's errors.csv, not counted twice
    assert not any(b.row in kept for b in dry.bad_rows if not b.graded)

    real = run_batch(opts([inp], out, max_chars=500, report=False))
    agrees(dry, real)
    assert sorted(json.loads(line)["row"] for line in (out / RESULTS_JSONL).read_text(encoding="utf-8").splitlines()) == [2, 3, 4, 5, 6]


def test_conflicting_out_is_refused_like_a_run(tmp_path: Path) -> None:
    inp = tmp_path / "c.csv"
    inp.write_text(f'student,question,answer\ns1,dropout-mini,"{GOOD}"\n', encoding="utf-8")
    out = tmp_path / "out"
    run_batch(opts([inp], out, report=False))
    inp.write_text(f'student,question,answer\ns1,dropout-mini,"{GOOD}"\ns2,count-mini,seed\n', encoding="utf-8")
    before = snapshot(out)
    with pytest.raises(BatchConflict, match=r"input c\.csv changed"):
        dry_run_batch(opts([inp], out))
    res = CliRunner().invoke(main, ["batch", str(inp), "--out", str(out), "--bank", str(BANK), "--dry-run"])
    assert res.exit_code == 2 and "holds results from a different run" in res.output and "Traceback" not in res.output
    # --restart: a run would discard the old results; the dry run says so and deletes nothing.
    res = CliRunner().invoke(main, ["batch", str(inp), "--out", str(out), "--bank", str(BANK), "--dry-run", "--restart"])
    assert res.exit_code == 0, res.output
    assert f"--restart: 1 row already graded in {out} would be discarded" in res.stderr
    assert "already done: 0  to grade: 2" in res.stderr
    assert snapshot(out) == before


def test_usage_errors_exit_2_and_write_nothing(tmp_path: Path) -> None:
    inp = tmp_path / "c.csv"
    inp.write_text(f'student,question,answer\ns1,dropout-mini,"{GOOD}"\n', encoding="utf-8")
    out = tmp_path / "out"
    for args, message in [
        ([str(tmp_path / "nope.csv")], "input file not found"),
        ([str(inp), "--columns", "student=学号"], "no column '学号' for student"),
        ([str(inp), "--encoding", "klingon"], "unknown encoding"),
        ([str(inp), "--max-chars", "0"], "--max-chars must be at least 1"),
        ([str(inp), "--judge"], "no judge model"),
    ]:
        res = CliRunner().invoke(main, ["batch", *args, "--out", str(out), "--bank", str(BANK), "--dry-run"])
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output and "Traceback" not in res.output
        assert not out.exists()


# --------------------------------------------------------------------------- with the judge


def test_judge_estimate_makes_no_request_and_matches_the_run(tmp_path: Path) -> None:
    inp = tmp_path / "c.csv"
    with inp.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "question", "answer"])
        for i in range(5):
            w.writerow([f"p{i}", "dropout-mini", f"{PARAPHRASE} Note {i}."])  # 5 distinct answers the judge is asked about
        w.writerow(["copy", "dropout-mini", f"{PARAPHRASE} Note 0."])  # a copy: judged once with p0
        for i in range(3):
            w.writerow([f"f{i}", "dropout-mini", FULL])  # the matcher settles these: no request
        w.writerow(["bad", "dropout-mini", ""])
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    with ScriptedServer(keyword_judge(KEYWORDS)) as srv:
        judge = ["--judge", "--model", "scripted", "--base-url", srv.base_url, "--cache-dir", str(cache)]
        args = ["batch", str(inp), "--out", str(out), "--bank", str(JUDGE_BANK), "-j", "1", "--no-progress", *judge]
        dry = CliRunner().invoke(main, [*args, "--dry-run"])
        assert srv.count == 0  # the server received no request at all
        assert dry.exit_code == 3, dry.output  # the empty answer
        assert not out.exists()
        assert "dry run: 6 answers, 5 requests (0 cached)" in dry.stderr and "no call made" in dry.stderr
        assert "cost unknown (no price for this model)" in dry.stderr
        estimate = [int(t) for t in dry.stderr.split("requests (0 cached), ~")[1].split(" completion")[0].replace("prompt + ~", "").split()]

        real = CliRunner().invoke(main, args)
        assert real.exit_code == 3, real.output
        assert srv.count == 5  # the run sent what the dry run said it would
        used = json.loads((out / "batch.json").read_text(encoding="utf-8"))["judge_usage"]
        # The estimate is tokenizer-free: within a factor of two of the server's own count.
        assert used["prompt_tokens"] / 2 <= estimate[0] <= used["prompt_tokens"] * 2

        # Another --out, same cache: every reply is cached now, so nothing would be sent.
        again = CliRunner().invoke(main, [*args[:3], str(tmp_path / "out2"), *args[4:], "--dry-run"])
        assert "dry run: 6 answers, 0 requests (5 cached)" in again.stderr
        # The finished --out: every row is done, no answer is left to judge.
        done = CliRunner().invoke(main, [*args, "--dry-run"])
        assert "already done: 9" in done.stderr and "dry run: 0 answers, 0 requests" in done.stderr
        assert srv.count == 5


@pytest.mark.parametrize(("max_cost", "shown"), [("0.5", "$0.50"), ("0.00001", "$0.00001")])
def test_judge_estimate_over_max_cost_exits_3_like_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_cost: str, shown: str
) -> None:
    """Regression: the dry run said the run would stop at --max-cost "(exit 3)", then "a run would exit 0", and exited 0."""
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"scripted": {"input": 1000.0, "output": 1000.0}}))  # dollars per million tokens
    monkeypatch.setenv("GRADER_PRICES", str(prices))
    inp = tmp_path / "c.csv"
    inp.write_text("student,question,answer\n" + "".join(f"s{i},dropout-mini,{PARAPHRASE} Note {i}.\n" for i in range(4)), encoding="utf-8")
    out = tmp_path / "out"
    with ScriptedServer(keyword_judge(KEYWORDS)) as srv:
        judge = ["--judge", "--model", "scripted", "--base-url", srv.base_url, "--max-cost", max_cost, "--no-progress"]
        args = ["batch", str(inp), "--out", str(out), "--bank", str(JUDGE_BANK), "-j", "1", *judge]
        dry = CliRunner().invoke(main, [*args, "--dry-run"])
        assert srv.count == 0 and not out.exists()
        assert dry.exit_code == 3, dry.output
        assert "dry run: 4 answers, 4 requests" in dry.stderr and "~$" in dry.stderr
        assert f"passes --max-cost {shown}: a run would stop calling the judge before the end" in dry.stderr
        assert "a run would exit 3: --max-cost would leave rows unjudged" in dry.stderr
        assert "exit 0" not in dry.stderr and "e-05" not in dry.stderr
        real = CliRunner().invoke(main, args)
    assert real.exit_code == dry.exit_code, real.output
    assert "max cost reached: 4 rows were not judged" in real.stderr


def test_estimate_within_max_cost_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"scripted": {"input": 0.01, "output": 0.01}}))
    monkeypatch.setenv("GRADER_PRICES", str(prices))
    inp = tmp_path / "c.csv"
    inp.write_text(f"student,question,answer\ns0,dropout-mini,{PARAPHRASE}\n", encoding="utf-8")
    with ScriptedServer(keyword_judge(KEYWORDS)) as srv:
        judge = ["--judge", "--model", "scripted", "--base-url", srv.base_url, "--max-cost", "5"]
        args = ["batch", str(inp), "--out", str(tmp_path / "out"), "--bank", str(JUDGE_BANK), "-j", "1", "--no-progress", *judge]
        dry = CliRunner().invoke(main, [*args, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "passes --max-cost" not in dry.stderr and "a run would exit 0: every row can be graded" in dry.stderr
        real = CliRunner().invoke(main, args)
        assert real.exit_code == 0 and srv.count == 1, real.output


def test_one_bad_row_is_one_row(tmp_path: Path) -> None:
    inp = tmp_path / "c.csv"
    inp.write_text(f'student,question,answer\ns1,dropout-mini,"{GOOD}"\ns2,nope,x\n', encoding="utf-8")
    res = CliRunner().invoke(main, ["batch", str(inp), "--out", str(tmp_path / "out"), "--bank", str(BANK), "--dry-run"])
    assert res.exit_code == 3
    assert "a run would exit 3: 1 row could not be graded (listed in errors.csv)" in res.stderr
