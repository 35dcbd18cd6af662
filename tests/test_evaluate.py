"""`grader eval`: metrics against hand-computed values, the report, the CLI, and bad input."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from grader import load_bank
from grader.cli import main
from grader.evaluate import agreement, evaluate, mae, pearson, qwk, ranks, read_graded, rmse, spearman

DATA = Path(__file__).parent / "data" / "trust"
BANK = DATA / "bank"
GRADED = DATA / "graded.csv"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"GRADER_BANK": str(BANK)})
    return result.exit_code, result.output


# --------------------------------------------------------------------------- metrics, by hand


def test_qwk_by_hand() -> None:
    # O = {(0,0),(1,2),(2,2)}; w = (i-j)²/4; Σ w·O = 1/4; Σ w·E = 3.75/3 = 1.25  ->  1 - 0.2 = 0.8
    assert qwk([0, 1, 2], [0, 2, 2], 0, 2) == pytest.approx(0.8)
    # Uniform marginals, machine a permutation: Σ w·O = 10/9 = Σ w·E  ->  0
    assert qwk([0, 1, 2, 3], [1, 3, 0, 2], 0, 3) == pytest.approx(0.0)
    # One rating off at the top: 1 - (1/9)/(8/9)
    assert qwk([0, 1, 2, 3], [0, 1, 2, 2], 0, 3) == pytest.approx(7 / 8)
    assert qwk([1, 2, 3], [1, 2, 3], 0, 3) == pytest.approx(1.0)
    assert qwk([2, 2], [2, 2], 0, 3) is None  # no variance anywhere: undefined, not 1 or 0
    # Regression: these gave 0.0, which read as "no agreement" and entered the mean QWK.
    assert qwk([1], [3], 0, 3) is None  # a single answer
    assert qwk([2, 2, 2], [1, 2, 3], 0, 3) == 0.0  # one rater constant: no agreement beyond chance
    assert qwk([1, 2, 3], [0, 0, 0], 0, 3) == 0.0  # a rubric that scores everything alike is not informative


def test_correlations_and_errors_by_hand() -> None:
    h, m = [0.0, 1.0, 2.0], [0.0, 2.0, 2.0]
    assert pearson(h, m) == pytest.approx(math.sqrt(3) / 2)  # sxy = 2, sxx = 2, syy = 8/3
    assert ranks(m) == [1.0, 2.5, 2.5]
    assert spearman(h, m) == pytest.approx(math.sqrt(3) / 2)
    assert spearman([1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 9.0, 16.0]) == pytest.approx(1.0)  # monotone, not linear
    assert pearson([1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 9.0, 16.0]) < 0.99
    assert rmse(h, m) == pytest.approx(math.sqrt(1 / 3))
    assert mae(h, m) == pytest.approx(1 / 3)
    assert pearson([1.0, 1.0], [0.0, 3.0]) is None


def test_agreement_rounds_to_the_rubric_scale() -> None:
    a = agreement([0.0, 7.5, 10.0], [0.4, 7.6, 9.5], 10)
    assert a.scale == [0, 10]
    assert a.confusion[0][0] == 1 and a.confusion[8][8] == 1 and a.confusion[10][10] == 1  # 7.5 and 7.6 -> 8, 9.5 -> 10
    assert a.exact == 1.0 and a.qwk == pytest.approx(1.0)


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=2, max_size=40))
def test_qwk_is_symmetric_and_bounded(pairs: list[tuple[int, int]]) -> None:
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    k1, k2 = qwk(a, b, 0, 4), qwk(b, a, 0, 4)
    assert (k1 is None) == (k2 is None)
    if k1 is not None and k2 is not None:
        assert k1 == pytest.approx(k2)
        assert -1.0 - 1e-9 <= k1 <= 1.0 + 1e-9


# --------------------------------------------------------------------------- the report


def test_evaluate_per_question_overall_human_and_worst() -> None:
    report = evaluate(read_graded(GRADED), load_bank(BANK))
    by_q = {q.question_id: q for q in report.questions}
    fruit = by_q["fruit"]
    # Rubric scores are 1, 3, 0, 2 (count of fruits named) against human 0, 1, 2, 3.
    assert [p[1] for p in fruit.pairs] == [1.0, 3.0, 0.0, 2.0]
    assert fruit.machine.qwk == pytest.approx(0.0)
    assert fruit.machine.mae == pytest.approx(1.5)
    assert fruit.machine.confusion == [[0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, 0]]
    assert fruit.human is not None and fruit.human.qwk == pytest.approx(7 / 8)  # second human: 0, 1, 2, 2
    tree = by_q["tree-zh"]
    assert tree.max_score == 10 and tree.machine.scale == [0, 10]
    assert [p[1] for p in tree.pairs] == [6.7, 10.0, 0.0]
    # Mixed max scores: overall is on a 0..10 scale (fruit scores × 10/3).
    assert report.overall_scale == "percent/10" and report.overall.n == 7
    assert report.mean_qwk == pytest.approx((0.0 + tree.machine.qwk) / 2)  # type: ignore[operator]  # both defined here
    # The worst disagreement first, with a per-point breakdown that explains it.
    worst = report.worst[0]
    assert (worst.rubric_id, worst.human, worst.machine) == ("fruit", 1.0, 3.0)
    assert any(line.startswith("+ plum") and "plums" in line for line in worst.breakdown)


def test_undefined_qwk_shows_a_dash_and_stays_out_of_the_mean(tmp_path: Path) -> None:
    # Regression: a question with one answer showed QWK 0.000 and that 0 entered the mean over questions.
    data = tmp_path / "d.csv"
    tree_rows = [line for line in GRADED.read_text(encoding="utf-8").splitlines() if line.startswith("tree-zh")]
    data.write_text(
        "question_id,answer_id,student_answer,score,score2\nfruit,a9,I like plums and apples.,1,\n" + "\n".join(tree_rows) + "\n"
    )
    report = evaluate(read_graded(data), load_bank(BANK))
    by_q = {q.question_id: q for q in report.questions}
    assert by_q["fruit"].n == 1 and by_q["fruit"].machine.qwk is None
    tree_qwk = by_q["tree-zh"].machine.qwk
    assert tree_qwk is not None and report.mean_qwk == pytest.approx(tree_qwk)
    assert report.qwk_undefined == ["fruit"]
    code, out = run("eval", str(data))
    assert code == 0, out
    fruit_line = next(line for line in out.splitlines() if line.startswith("fruit "))
    assert fruit_line.split()[3] == "—"  # question, rubric, n, QWK
    assert f"mean QWK over questions: {tree_qwk:.3f} (over 1 of 2 questions; 1 excluded" in out and ": fruit)" in out
    code, out = run("eval", str(data), "--format", "json")
    assert json.loads(out)["qwk_undefined"] == ["fruit"]


def test_unknown_questions_are_skipped_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text(GRADED.read_text(encoding="utf-8") + "nope,c1,whatever,1,\n", encoding="utf-8")
    report = evaluate(read_graded(data), load_bank(BANK))
    assert report.n == 7
    assert report.skipped == {"no rubric 'nope' for question nope": 1}


def test_id_format_and_chinese_columns_in_jsonl(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    lines = [{"题号": "zh", "答案": "结果有序，O(n)", "分数": 10}, {"题号": "zh", "答案": "不会", "分数": 0}]
    data.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    code, out = run("eval", str(data), "--id-format", "tree-{}", "--columns", "question=题号,answer=答案,score=分数", "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    assert report["questions"][0]["rubric_id"] == "tree-zh"
    assert report["overall"]["qwk"] == pytest.approx(1.0)
    assert report["overall_human"] is None


# --------------------------------------------------------------------------- the CLI and bad input


def test_cli_text_report() -> None:
    code, out = run("eval", str(GRADED), "--worst", "1")
    assert code == 0, out
    assert "fruit" in out and "0.875 / 0.944" in out  # human-human ceiling printed next to the rubric's figures
    assert "worst 1 disagreements" in out and "human 1  rubric 3" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("question_id,student_answer,score\nfruit,apple,lots\n", "d.csv:2: score 'lots' is not a number"),
        ("question_id,student_answer,score\nfruit,apple,5\n", "d.csv:2: score 5 is outside the rubric's scale 0..3 (fruit)"),
        ("question_id,student_answer\nfruit,apple\n", "no score column"),
        ("question_id,student_answer,score\nfruit,apple,1,extra\n", "d.csv:2: 4 fields, the header has 3"),
        ("question_id,student_answer,score\nzzz,apple,1\n", "no row has a rubric in the bank"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    data = tmp_path / "d.csv"
    data.write_text(content, encoding="utf-8")
    code, out = run("eval", str(data))
    assert code == 2
    assert message in out
    assert "Traceback" not in out


def test_bad_options_are_clear_errors(tmp_path: Path) -> None:
    code, out = run("eval", str(GRADED), "--columns", "grade=x")
    assert code == 2 and "unknown role 'grade'" in out
    code, out = run("eval", str(GRADED), "--id-format", "asap-{x}")
    assert code == 2 and "--id-format" in out
    code, out = run("eval", str(GRADED), "--judge-policy", "sometimes")
    assert code == 2 and "'sometimes' is not one of 'review', 'full'" in out
    code, out = run("eval", str(tmp_path / "missing.csv"))
    assert code == 2 and "dataset not found" in out


def test_judge_passthrough_compares_engines_and_prints_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("grader.judge")  # built by issue 4
    from judge_server import ScriptedServer, keyword_judge

    # A scripted judge (real openai client, HTTP on 127.0.0.1) that also credits "damson" as a plum.
    judge = keyword_judge({"apple": ["apple"], "cherry": ["cherr"], "plum": ["plum", "damson"]})
    data = tmp_path / "d.csv"
    data.write_text("question_id,answer,score\nfruit,apples and damsons,2\nfruit,nothing,0\nfruit,cherries,1\n", encoding="utf-8")
    with ScriptedServer(judge) as srv:
        monkeypatch.setenv("GRADER_MODEL", "scripted")
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
        result = CliRunner().invoke(main, ["eval", str(data), "--bank", str(BANK), "--judge", "--judge-policy", "full", "--format", "json"])
        assert result.exit_code == 0, result.output
        assert srv.count > 0
    judged = json.loads(result.output)
    assert judged["engine"] == "judge (scripted, full)"
    assert judged["overall"]["qwk"] == pytest.approx(1.0)  # the judge credits the paraphrase
    assert judged["usage"] and all(v >= 0 for v in judged["usage"].values())
    matcher = json.loads(run("eval", str(data), "--format", "json")[1])
    assert matcher["engine"] == "matcher" and matcher["overall"]["qwk"] < 1.0 and matcher["usage"] == {}


# --------------------------------------------------------------------------- the HTML page, in a real browser


def test_html_page_in_chromium(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    attack = '<img src=x onerror="document.title=1"><script>alert(1)</script>'
    data.write_text(GRADED.read_text(encoding="utf-8") + f'fruit,z9,"{attack.replace(chr(34), chr(34) * 2)}",3,3\n', encoding="utf-8")
    page = tmp_path / "eval.html"
    code, out = run("eval", str(data), "--html", str(page))
    assert code == 0, out
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text  # self-contained, and the answer is escaped text
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed")
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = proc.stdout
    assert [line for line in proc.stderr.splitlines() if ":CONSOLE" in line] == []
    assert dom.count('class="scatter"') == 2
    assert 'data-question="fruit" data-points="5"' in dom and 'data-question="tree-zh" data-points="3"' in dom
    assert dom.count('class="confusion"') == 2
    assert 'id="mean-qwk"' in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
