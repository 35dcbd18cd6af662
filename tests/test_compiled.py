"""The mypyc-compiled matcher (hatch_build.py) grades exactly as its pure-Python source does.

CI installs the package with `pip install .`, which compiles normalize/negation/matcher; this
test grades the same answers with the installed (compiled) package in this process and with the
repository's source in a fresh interpreter, and compares the full results.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import grader
from grader import grade, load_bank

ROOT = Path(__file__).resolve().parent.parent


def _answers() -> list[tuple[str, str]]:
    """Bank examples, reference sentences, and variants that exercise negation, typos and folding."""
    rng = random.Random(5)
    bank = load_bank(ROOT / "rubrics")
    out: list[tuple[str, str]] = []
    for qid in bank:
        r = bank[qid]
        out += [(qid, e.answer) for e in r.examples]
        for lang in ("zh", "en"):
            sents = [s for s in re.split(r"(?<=[。！？.!?；;])\s*|\n", r.reference_answer.get(lang)) if len(s.strip()) > 4]
            for _ in range(12):
                picked = rng.sample(sents, min(len(sents), rng.randint(1, 3)))
                text = (" " if lang == "en" else "").join(picked)
                out.append((qid, text))
                out.append((qid, text.replace("是", "不是", 1).replace(" is ", " is not ", 1)))
                out.append((qid, text.upper().replace("A", "Ａ")))  # full width and case folding
                out.append((qid, re.sub(r"([a-z]{6,})", lambda m: m.group(1)[:2] + m.group(1)[3:], text, count=2)))  # typos
    return out


SOURCE_GRADER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import grader
assert not grader.COMPILED, grader.__file__
from grader import grade, load_bank
bank = load_bank(sys.argv[1] + "/rubrics")
for line in sys.stdin:
    qid, answer = json.loads(line)
    print(grade(bank[qid], answer).model_dump_json())
"""


@pytest.mark.skipif(not grader.COMPILED, reason="the installed matcher is pure Python (an editable install, or no C compiler)")
def test_compiled_matcher_grades_like_its_source() -> None:
    answers = _answers()
    assert len(answers) > 1000
    bank = load_bank(ROOT / "rubrics")
    compiled_results = [grade(bank[qid], answer).model_dump_json() for qid, answer in answers]
    proc = subprocess.run(
        [sys.executable, "-c", SOURCE_GRADER, str(ROOT)],
        input="\n".join(json.dumps(a, ensure_ascii=False) for a in answers) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    source_results = proc.stdout.splitlines()
    assert len(source_results) == len(answers)
    differ = [(a, c, s) for a, c, s in zip(answers, compiled_results, source_results, strict=True) if c != s]
    assert not differ, f"{len(differ)} answers graded differently, first: {differ[0]}"
    assert sum(json.loads(c)["score"] > 0 for c in compiled_results) > len(answers) // 2  # the answers earn points


def test_compiled_flag_matches_the_loaded_modules() -> None:
    import importlib

    files = [importlib.import_module(f"grader.{name}").__file__ or "" for name in ("matcher", "negation", "normalize")]
    assert all(f.endswith(".py") for f in files) != grader.COMPILED, files
