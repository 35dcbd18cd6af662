"""grader: score free-text answers against rubrics of key points.

The public API::

    from grader import load_bank, grade
    bank = load_bank()                 # the built-in bank (or load_bank("my/rubrics"))
    result = grade(bank["dropout"], "Dropout randomly zeroes activations ...")
    print(result.score, [p.status for p in result.points])

    from grader import JudgeConfig     # the LLM judge (docs/llm-judge.md), loaded on first use
    result = grade(bank["dropout"], "...", judge=JudgeConfig(model="qwen2.5:7b", base_url="http://localhost:11434/v1"))
"""

from typing import TYPE_CHECKING, Any

from . import matcher as _matcher
from .bank import Bank, builtin_bank_path, load_bank
from .errors import GraderError, InputError, RubricError, RubricErrors, UnknownRubricError
from .grade import grade
from .normalize import normalize
from .result import Evidence, GradeResult, MisconceptionHit, MissingPoint, PointResult
from .rubric import KeyPoint, Misconception, Rubric, load_rubric, parse_rubric

if TYPE_CHECKING:
    from .cost import Usage
    from .judge import Judge, JudgeConfig, JudgeError, agrade, grade_many, grade_with_judge

__version__ = "0.1.0"

COMPILED: bool = not _matcher.__file__.endswith((".py", ".pyc"))
"""True when the matcher's modules run as mypyc-compiled extensions (see hatch_build.py)."""

# The LLM judge's API, loaded on first use (PEP 562) so `import grader` stays fast and never
# imports the judge; `openai` itself is imported only when a request is sent.
_JUDGE_EXPORTS = {
    "Judge": "judge",
    "JudgeConfig": "judge",
    "JudgeError": "judge",
    "agrade": "judge",
    "grade_many": "judge",
    "grade_with_judge": "judge",
    "Usage": "cost",
}


def __getattr__(name: str) -> Any:
    module = _JUDGE_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'grader' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "COMPILED",
    "Bank",
    "Evidence",
    "GradeResult",
    "GraderError",
    "InputError",
    "Judge",
    "JudgeConfig",
    "JudgeError",
    "KeyPoint",
    "Misconception",
    "MisconceptionHit",
    "MissingPoint",
    "PointResult",
    "Rubric",
    "RubricError",
    "RubricErrors",
    "UnknownRubricError",
    "Usage",
    "__version__",
    "agrade",
    "builtin_bank_path",
    "grade",
    "grade_many",
    "grade_with_judge",
    "load_bank",
    "load_rubric",
    "normalize",
    "parse_rubric",
]
