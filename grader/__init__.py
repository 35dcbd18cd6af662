"""grader: score free-text answers against rubrics of key points.

The public API::

    from grader import load_bank, grade
    bank = load_bank()                 # the built-in bank (or load_bank("my/rubrics"))
    result = grade(bank["dropout"], "Dropout randomly zeroes activations ...")
    print(result.score, [p.status for p in result.points])
"""

from .bank import Bank, builtin_bank_path, load_bank
from .errors import GraderError, InputError, RubricError, RubricErrors, UnknownRubricError
from .grade import grade
from .normalize import normalize
from .result import Evidence, GradeResult, MisconceptionHit, MissingPoint, PointResult
from .rubric import KeyPoint, Misconception, Rubric, load_rubric, parse_rubric

__version__ = "0.1.0"

__all__ = [
    "Bank",
    "Evidence",
    "GradeResult",
    "GraderError",
    "InputError",
    "KeyPoint",
    "Misconception",
    "MisconceptionHit",
    "MissingPoint",
    "PointResult",
    "Rubric",
    "RubricError",
    "RubricErrors",
    "UnknownRubricError",
    "__version__",
    "builtin_bank_path",
    "grade",
    "load_bank",
    "load_rubric",
    "normalize",
    "parse_rubric",
]
