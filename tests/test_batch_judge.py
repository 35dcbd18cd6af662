"""`grader batch --judge` (and practice/eval --judge) through the real `openai` client against the
scripted server on 127.0.0.1: concurrency, resume without repeated calls, failures, --max-cost."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from judge_server import ScriptedServer, content, keyword_judge, prompt_parts, status

from grader.batch import E_JUDGE_FAILED, MANIFEST, RESULTS_JSONL, BatchOptions, run_batch
from grader.cli import main
from grader.judge import JudgeConfig

ROOT = Path(__file__).parent.parent
BANK = Path(__file__).parent / "data" / "judge"  # dropout-mini: 4 points, 1 misconception

KEYWORDS = {
    "random-drop": ["randomly drops"],
    "regularize": ["overfitting"],
    "inference-off": ["stop using it"],
    "scaling": ["1/(1-p)"],
}
# The matcher misses "stop using it" (inference-off) and scaling: the review policy asks the judge about both.
PARAPHRASE = "Dropout randomly drops units during training to reduce overfitting. Once deployed we stop using it."
# The matcher credits every point: the review policy makes no call for it.
FULL = "Dropout randomly drops units while training, a regularizer against overfitting. At test time it is turned off; inverted dropout scales by 1/(1-p)."


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("GRADER_MODEL", "OPENAI_BASE_URL", "GRADER_JUDGE_POLICY", "GRADER_PRICES", "OPENAI_API_KEY", "GRADER_JUDGE", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))


def cohort(path: Path, n: int, *, full: int = 0) -> Path:
    """n distinct paraphrases (each needs the judge) and `full` copies of a fully met answer (no call)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "question", "answer"])
        for i in range(n):
            w.writerow([f"s{i}", "dropout-mini", f"{PARAPHRASE} Note {i}."])
        for i in range(full):
            w.writerow([f"f{i}", "dropout-mini", FULL])
    return path


def cfg(srv: ScriptedServer, tmp_path: Path, **kw: Any) -> JudgeConfig:
    base: dict[str, Any] = {
        "model": "scripted",
        "base_url": srv.base_url,
        "cache_dir": tmp_path / "cache",
        "backoff": 0.01,
        "max_backoff": 0.02,
        "timeout": 5,
    }
    base.update(kw)
    return JudgeConfig(**base)


def batch(inp: Path, out: Path, judge: JudgeConfig, **kw: Any) -> Any:
    return run_batch(BatchOptions(inputs=[inp], out=out, bank=BANK, workers=1, progress=False, judge=judge, **kw))


def results(out: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in (out / RESULTS_JSONL).read_text(encoding="utf-8").splitlines()]
    by_student = {r["student_id"]: r for r in rows}
    assert len(by_student) == len(rows), "a row was written twice"
    return by_student


def errors(out: Path) -> list[dict[str, str]]:
    with (out / "errors.csv").open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def gated(responder: Any, delay: float = 0.05) -> tuple[Any, dict[str, int]]:
    """Wrap a responder to record the peak number of requests the server handles at once."""
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def respond(body: dict[str, Any]) -> str:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(delay)
        with lock:
            state["now"] -= 1
        return str(responder(body))

    return respond, state


# --------------------------------------------------------------------------- the core


def test_judged_rows_concurrency_and_no_call_for_settled_answers(tmp_path: Path) -> None:
    inp = cohort(tmp_path / "c.csv", 12, full=3)
    respond, state = gated(keyword_judge(KEYWORDS))
    with ScriptedServer(respond) as srv:
        s = batch(inp, tmp_path / "out", cfg(srv, tmp_path, concurrency=3))
        assert srv.count == 12  # one call per distinct paraphrase; none for the fully met answer
    assert 2 <= state["peak"] <= 3  # concurrent, and never above --concurrency
    assert s.exit_code == 0 and s.graded == 15 and s.judge_usage is not None
    assert s.judge_usage.requests == 12 and s.judge_usage.prompt_tokens > 0
    res = results(tmp_path / "out")
    para = res["s0"]["result"]
    assert para["engine"] == "hybrid" and para["meta"]["judge"]["model"] == "scripted"
    assert {p["id"]: p["status"] for p in para["points"]}["inference-off"] == "met"  # the judge credited the paraphrase
    assert res["f0"]["result"]["engine"] == "matcher"
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["options"]["judge"]["model"] == "scripted" and manifest["judge_usage"]["requests"] == 12


def test_resume_makes_no_repeated_call(tmp_path: Path) -> None:
    inp = cohort(tmp_path / "c.csv", 6)
    out = tmp_path / "out"
    with ScriptedServer(keyword_judge(KEYWORDS)) as srv:
        first = batch(inp, out, cfg(srv, tmp_path))
        assert srv.count == 6 and first.exit_code == 0
        before = results(out)
        # A rerun of a finished batch: every row is done, no call at all.
        again = batch(inp, out, cfg(srv, tmp_path))
        assert srv.count == 6 and again.resumed == 6 and again.graded == 0
        # A crash after 2 rows were written (the other replies were already cached): the 4 rows
        # left are judged again from the cache, without a request.
        lines = (out / RESULTS_JSONL).read_text(encoding="utf-8").splitlines(keepends=True)
        (out / RESULTS_JSONL).write_text("".join(lines[:2]) + lines[2][:15], encoding="utf-8")  # and a torn line
        resumed = batch(inp, out, cfg(srv, tmp_path))
        assert srv.count == 6
        assert resumed.resumed == 2 and resumed.graded == 4 and resumed.judge_usage is not None
        assert resumed.judge_usage.cached == 4 and resumed.judge_usage.requests == 0
    after = results(out)
    assert sorted(after) == sorted(before)
    assert all(after[k]["result"]["score"] == before[k]["result"]["score"] for k in before)


def test_changing_the_judge_on_resume_is_refused(tmp_path: Path) -> None:
    inp = cohort(tmp_path / "c.csv", 2)
    with ScriptedServer(keyword_judge(KEYWORDS)) as srv:
        batch(inp, tmp_path / "out", cfg(srv, tmp_path))
        from grader.batch import BatchConflict

        with pytest.raises(BatchConflict, match="option judge"):
            batch(inp, tmp_path / "out", cfg(srv, tmp_path, policy="full"))
        with pytest.raises(BatchConflict, match="option engine"):
            run_batch(BatchOptions(inputs=[inp], out=tmp_path / "out", bank=BANK, workers=1, progress=False))
        # The budget, concurrency and cache are not part of the results: changing them resumes.
        assert batch(inp, tmp_path / "out", cfg(srv, tmp_path, concurrency=1, max_cost=5.0)).resumed == 2


# --------------------------------------------------------------------------- failures


def test_invalid_replies_become_unscored_points_and_are_reported(tmp_path: Path) -> None:
    judge = keyword_judge(KEYWORDS)

    def respond(body: dict[str, Any]) -> str:
        _, _, answer = prompt_parts(body)
        return '{"points": {"random-drop": ' if "Note 1." in answer else str(judge(body))  # truncated JSON, every time

    inp = cohort(tmp_path / "c.csv", 3)
    out = tmp_path / "out"
    with ScriptedServer(respond) as srv:
        s = batch(inp, out, cfg(srv, tmp_path, retries=2))
        assert srv.count == 2 + 3  # two good answers, and 1 + 2 retries for the bad one
    assert s.exit_code == 3 and s.judge_failed == 1 and s.failed == 0 and s.graded == 3
    bad = results(out)["s1"]["result"]
    assert "unscored_points" in bad["flags"] and bad["needs_review"]
    statuses = {p["id"]: p["status"] for p in bad["points"]}
    assert statuses["inference-off"] == "unscored" and statuses["random-drop"] == "met"  # the matcher's credit stands
    assert bad["score"] > 0  # never a silent zero
    errs = errors(out)
    assert [(e["student_id"], e["error"], e["graded"]) for e in errs] == [("s1", E_JUDGE_FAILED, "yes")]
    assert "invalid JSON" in errs[0]["reason"] and "inference-off" in errs[0]["reason"]
    good = results(out)["s0"]["result"]
    assert not good["needs_review"] and good["meta"]["usage"]["failures"] == 0
    # The report's review queue lists it.
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "unscored_points" in html


def test_server_errors_become_unscored_points(tmp_path: Path) -> None:
    inp = cohort(tmp_path / "c.csv", 2)
    out = tmp_path / "out"
    with ScriptedServer(keyword_judge(KEYWORDS)) as srv:
        for _ in range(3):
            srv.faults.append(status(503))
        srv.faults.append(content("sorry, I cannot help with that"))  # not JSON either
        s = batch(inp, out, cfg(srv, tmp_path, retries=3, concurrency=1))
    assert s.exit_code == 3 and s.judge_failed == 1 and s.judge_usage is not None and s.judge_usage.failures == 1
    res = results(out)
    failed = [k for k, r in res.items() if "unscored_points" in r["result"]["flags"]]
    assert len(failed) == 1 and res[failed[0]]["result"]["meta"]["judge"]["errors"]
    assert [e["error"] for e in errors(out)] == [E_JUDGE_FAILED]


def test_cli_refused_requests_exit_3_with_summary(tmp_path: Path) -> None:
    inp = cohort(tmp_path / "c.csv", 2, full=1)
    with ScriptedServer(keyword_judge(KEYWORDS)) as srv:
        for _ in range(2):
            srv.faults.append(status(401))  # not retried: fails at once
        args = ["batch", str(inp), "--out", str(tmp_path / "out"), "--bank", str(BANK), "--workers", "1", "--no-progress"]
        judge = ["--judge", "--model", "scripted", "--base-url", srv.base_url, "--cache-dir", str(tmp_path / "cache")]
        res = CliRunner().invoke(main, [*args, *judge])
    assert res.exit_code == 3, res.output
    assert "judge: 2 requests" in res.output and "2 unscored" in res.output
    assert "the judge could not score 2 rows" in res.output and "judge_failed 2" in res.output
    assert "Traceback" not in res.output


# --------------------------------------------------------------------------- budget


def test_max_cost_keeps_finished_work_and_a_rerun_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"scripted": {"input": 1000.0, "output": 1000.0}}))  # dollars per million tokens
    monkeypatch.setenv("GRADER_PRICES", str(prices))
    inp = cohort(tmp_path / "c.csv", 8, full=2)
    out = tmp_path / "out"
    with ScriptedServer(keyword_judge(KEYWORDS)) as srv:
        # What one call costs here (another cache, so the real run starts cold).
        probe = batch(cohort(tmp_path / "p.csv", 1), tmp_path / "probe", cfg(srv, tmp_path, cache_dir=tmp_path / "probe-cache"))
        assert probe.judge_usage is not None and probe.judge_usage.cost > 0
        one = probe.judge_usage.cost
        srv.bodies.clear()
        s = batch(inp, out, cfg(srv, tmp_path, max_cost=3.5 * one, concurrency=1))
        judged = srv.count
        assert 1 <= judged < 8
        assert s.judge_deferred == 8 - judged and s.exit_code == 3
        assert s.judge_usage is not None and s.judge_usage.cost <= 3.5 * one * 1.01
        assert s.graded == judged + 2  # the fully met answers need no call and are kept
        assert any("max cost reached" in n for n in s.notes)
        assert len(results(out)) == judged + 2 and errors(out) == []  # deferred rows are not errors: a rerun grades them
        assert json.loads((out / MANIFEST).read_text())["complete"] is False
        # The rerun (no cap) calls only for the rows left, and completes the batch.
        done = batch(inp, out, cfg(srv, tmp_path))
        assert srv.count == 8 and done.exit_code == 0 and done.resumed == judged + 2
    assert len(results(out)) == 10
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["complete"] is True and manifest["judge_usage"]["requests"] == 8


# --------------------------------------------------------------------------- end to end, other commands


def _env(srv: ScriptedServer, tmp_path: Path) -> dict[str, str]:
    return {
        "GRADER_MODEL": "scripted",
        "OPENAI_BASE_URL": srv.base_url,
        "GRADER_CACHE_DIR": str(tmp_path / "c"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }


def test_cli_batch_judge_subprocess_with_worker_processes(tmp_path: Path) -> None:
    inp = cohort(tmp_path / "c.csv", 6, full=2)
    with ScriptedServer(keyword_judge(KEYWORDS)) as srv:
        cmd = [sys.executable, "-m", "grader", "batch", str(inp), "--out", str(tmp_path / "out"), "--bank", str(BANK)]
        cmd += ["--workers", "2", "--judge", "--concurrency", "4", "--no-report"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=_env(srv, tmp_path), cwd=ROOT, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "judge: 6 requests, 0 cached" in out.stderr and srv.count == 6
    assert all(r["result"]["engine"] in ("hybrid", "matcher") for r in results(tmp_path / "out").values())


def test_batch_without_judge_does_not_import_openai(tmp_path: Path) -> None:
    inp = cohort(tmp_path / "c.csv", 2)
    code = (
        "import sys\nfrom grader.cli import main\n"
        f"try:\n    main(['batch', {str(inp)!r}, '--out', {str(tmp_path / 'o')!r}, '--bank', {str(BANK)!r}, '-j', '1', '--no-report'])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "import grader\nassert grader.JudgeConfig.__name__ == 'JudgeConfig'\n"
        "print('openai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]


def test_public_judge_exports() -> None:
    import grader
    from grader import JudgeConfig, Usage, agrade, grade_many, grade_with_judge
    from grader.judge import JudgeConfig as Direct

    assert JudgeConfig is Direct and callable(agrade) and callable(grade_many) and callable(grade_with_judge)
    assert Usage().requests == 0
    with pytest.raises(AttributeError):
        _ = grader.NoSuchThing  # type: ignore[attr-defined]


def test_practice_judge_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.history import open_history

    with ScriptedServer(keyword_judge(KEYWORDS)) as srv:
        for k, v in _env(srv, tmp_path).items():
            if k not in ("PATH", "HOME"):
                monkeypatch.setenv(k, v)
        db = tmp_path / "h.sqlite3"
        args = ["practice", "--bank", str(BANK), "--question", "dropout-mini", "--db", str(db), "--lang", "en"]
        judged = CliRunner().invoke(main, [*args, "--judge"], input=PARAPHRASE)
        assert judged.exit_code == 0, judged.output
        assert srv.count == 1
        plain = CliRunner().invoke(main, args, input=PARAPHRASE)
        assert plain.exit_code == 0 and srv.count == 1
    with open_history(db) as h:
        attempts = h.attempts()
    assert [a.engine for a in attempts] == ["hybrid", "matcher"]
    assert attempts[0].score > attempts[1].score  # the judge credited "stop using it"


def test_practice_judge_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main, ["practice", "--bank", str(BANK), "-q", "dropout-mini", "--judge", "--db", str(tmp_path / "h")], input=PARAPHRASE
    )
    assert res.exit_code == 2 and "GRADER_MODEL" in res.output
