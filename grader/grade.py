"""`grade()`: one answer against one rubric, with the matcher (and, later, the judge)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from .injection import find_injections
from .matcher import evidence, match_misconceptions, match_points
from .normalize import Normalized, detect_language, normalize
from .result import FLAG_EMPTY, FLAG_INJECTION, GradeResult, MisconceptionHit, MissingPoint, PointResult
from .rubric import Rubric
from .scoring import final_score

if TYPE_CHECKING:
    from .judge import JudgeConfig


def feedback_language(rubric: Rubric, language: str, lang: str | None = None) -> Literal["zh", "en"]:
    """The language for statements and hints: `lang` if given, else the answer's."""
    if lang == "zh":
        return "zh"
    if lang == "en":
        return "en"
    if language in ("zh", "mixed"):
        return "zh"
    if language == "en":
        return "en"
    return "zh" if "zh" in rubric.languages else "en"


def missing_points(rubric: Rubric, points: list[PointResult], lang: str) -> list[MissingPoint]:
    """Feedback for every point not fully met, in `lang`."""
    out = []
    for p in points:
        if p.status == "met":
            continue
        kp = rubric.point(p.id)
        out.append(MissingPoint(id=p.id, statement=kp.statement.get(lang), hint=kp.hint.get(lang) if kp.hint else None))
    return out


def assemble(
    rubric: Rubric,
    norm: Normalized,
    points: list[PointResult],
    misconceptions: list[MisconceptionHit],
    *,
    lang: str | None = None,
    engine: Literal["matcher", "judge", "hybrid"] = "matcher",
    flags: list[str] | None = None,
    meta: dict[str, object] | None = None,
) -> GradeResult:
    """Build the result from point verdicts; the only place a score is computed."""
    language = detect_language(norm)
    fb = feedback_language(rubric, language, lang)
    flags = list(flags or [])
    if not norm.text.strip():
        flags.append(FLAG_EMPTY)
    injections = find_injections(norm)
    if injections:
        flags.append(FLAG_INJECTION)
    score = final_score(rubric, points, misconceptions)
    meta = dict(meta or {})
    if injections:
        meta["injection_evidence"] = [e.model_dump() for e in evidence(norm, injections)]
    return GradeResult(
        rubric_id=rubric.id,
        score=score,
        max_score=rubric.max_score,
        percent=round(100 * score / rubric.max_score, 1),
        points=points,
        missing=missing_points(rubric, points, fb),
        misconceptions=misconceptions,
        language=language,
        feedback_lang=fb,
        engine=engine,
        rubric_version=rubric.version,
        flags=sorted(set(flags)),
        needs_review=bool(flags) or any(p.needs_review for p in points),
        meta=meta,
    )


def grade(rubric: Rubric, answer: str, *, lang: str | None = None, judge: JudgeConfig | None = None) -> GradeResult:
    """Grade `answer` against `rubric` with the offline matcher (and the LLM judge, given `judge`).

    Returns the result: score, per-point verdicts with evidence, missing points with
    hints and misconceptions with corrections, in `lang` (default: the answer's language).
    """
    if judge is not None:  # issue 4: imported lazily, so the matcher path never loads the judge
        from .judge import grade_with_judge

        return grade_with_judge(rubric, answer, lang=lang, config=judge)
    return grade_normalized(rubric, normalize(answer), lang=lang)


def grade_normalized(rubric: Rubric, norm: Normalized, *, lang: str | None = None) -> GradeResult:
    """`grade()` with the matcher, for an answer already normalised."""
    language = detect_language(norm)
    fb = feedback_language(rubric, language, lang)
    points = match_points(rubric, norm)
    misconceptions = match_misconceptions(rubric, norm, fb)
    result = assemble(rubric, norm, points, misconceptions, lang=fb)
    # The matcher's memo on `norm` refers back to it: emptied here, the answer is freed by
    # reference counting at once (left to the garbage collector, every answer cost ~65 KB
    # until a collection, and batch workers grew and slowed).
    norm.cache.clear()
    return result
