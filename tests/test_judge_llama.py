"""The judge end to end against a real model: llama.cpp's llama-server with Gemma 3 270M on loopback.

Runs only when GRADER_LLAMA_SERVER (the llama-server binary) and GRADER_LLAMA_MODEL (the GGUF)
point to existing files; `.ci/llama.sh` builds and caches both, then runs this file. The model is
a tiny base model: these tests check the plumbing (schema-valid replies, grounding rejecting
invented quotes, the cache, usage accounting), never the quality of its verdicts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER = os.environ.get("GRADER_LLAMA_SERVER", "")
MODEL = os.environ.get("GRADER_LLAMA_MODEL", "")
ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "judge"

pytestmark = [
    pytest.mark.skipif(
        not (SERVER and MODEL and Path(SERVER).is_file() and Path(MODEL).is_file()),
        reason="set GRADER_LLAMA_SERVER and GRADER_LLAMA_MODEL (bash .ci/llama.sh does)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                SERVER,
                "-m",
                MODEL,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-jinja",
                "--chat-template",
                "gemma",
                "-c",
                "4096",
                "-t",
                "2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama-server did not become healthy:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()  # by PID, the process we started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


ANSWER = "Dropout randomly drops units during training to reduce overfitting. Once deployed we stop using it."


def _cli(base_url: str, cache: Path, answer: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "grader", "grade", "dropout-mini", str(answer), "--bank", str(DATA), "--judge", "--json", *extra]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GRADER_MODEL": "gemma3-270m",
        "OPENAI_BASE_URL": base_url,
        "GRADER_CACHE_DIR": str(cache),
    }
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_real_model_through_the_cli(llama: str, tmp_path: Path) -> None:
    answer = tmp_path / "answer.txt"
    answer.write_text(ANSWER, encoding="utf-8")
    first = _cli(llama, tmp_path / "cache", answer, "--judge-policy", "full")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    judge = result["meta"]["judge"]
    usage = result["meta"]["usage"]
    print("\nllama usage:", first.stderr.strip(), "\nraw:", judge["raw"][0][:600])
    # Schema-valid on the first request, in json_schema mode (the server supports it natively).
    assert judge["mode"] == ["json_schema"] and judge["errors"] == [] and judge["unscored"] == {}
    assert usage["requests"] == 1 and usage["prompt_tokens"] > 100 and usage["completion_tokens"] > 0
    assert "judge: 1 requests, 0 cached" in first.stderr
    # Grounding: whatever the model claims, credit from the judge needs a quote really in the answer.
    for p in result["points"]:
        if p["engine"] == "judge" and p["credit"] > 0:
            assert p["evidence"] and all(ANSWER[e["start"] : e["end"]] == e["text"] for e in p["evidence"])
        if p["id"] in judge["ungrounded"]:
            assert p["needs_review"]
    # The cache: the same answer again makes no request.
    again = _cli(llama, tmp_path / "cache", answer, "--judge-policy", "full")
    assert again.returncode == 0 and "judge: 0 requests, 1 cached" in again.stderr
    assert json.loads(again.stdout)["score"] == result["score"]


def test_real_model_review_policy_and_invented_quotes(llama: str, tmp_path: Path) -> None:
    # An answer that the model's habit of quoting "..." or rubric text cannot ground in.
    answer = tmp_path / "answer.txt"
    answer.write_text("它在训练时有用。", encoding="utf-8")
    out = _cli(llama, tmp_path / "cache", answer)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["meta"]["judge"]["asked"] == ["random-drop", "regularize", "inference-off", "scaling"]
    credited = [p for p in result["points"] if p["engine"] == "judge" and p["credit"] > 0]
    for p in credited:
        assert all(e["text"] in "它在训练时有用。" for e in p["evidence"])
    assert result["meta"]["usage"]["requests"] >= 1
