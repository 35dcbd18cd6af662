"""The result of grading one answer: per-point verdicts, missing points, misconceptions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["met", "partial", "missing", "contradicted", "unscored"]
"""A key point's verdict. `unscored` means an engine could not decide (e.g. the judge failed)."""

Engine = Literal["matcher", "judge"]

# Flags a result may carry; a flagged result belongs in a review queue.
FLAG_INJECTION = "injection_suspected"
FLAG_EMPTY = "empty_answer"
FLAG_TRUNCATED = "truncated"
FLAG_UNSCORED = "unscored_points"
FLAG_DISAGREEMENT = "engines_disagree"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Evidence(_Model):
    """A span of the original answer that earned (or contradicted) a point."""

    start: int
    """Offset of the first character in the answer as written."""
    end: int
    """Offset one past the last character."""
    text: str
    """The answer's own characters at [start, end)."""


class PointResult(_Model):
    """The verdict on one key point."""

    id: str
    """The key point's id."""
    status: Status
    """met, partial, missing, contradicted (stated then negated) or unscored."""
    credit: float = Field(ge=0, le=1)
    """Share of the weight earned, in [0, 1]."""
    weight: float
    """The key point's weight in the rubric."""
    evidence: list[Evidence] = []
    """The words that earned (or, when contradicted, negated) the point."""
    engine: Engine = "matcher"
    """Which engine decided this point."""
    reason: str | None = None
    """A one-line reason (the judge's, or why the point is unscored)."""
    needs_review: bool = False
    """True when the engines disagree or the point could not be scored."""


class MissingPoint(_Model):
    """A key point the answer did not earn, in the feedback language."""

    id: str
    """The key point's id."""
    statement: str
    """What the point says."""
    hint: str | None = None
    """A nudge towards the point."""


class MisconceptionHit(_Model):
    """A misconception found in the answer."""

    id: str
    """The misconception's id."""
    penalty: float
    """Points subtracted."""
    correction: str
    """The correct knowledge, in the feedback language."""
    evidence: list[Evidence] = []
    """Where the answer states it."""


class GradeResult(_Model):
    """Everything `grade()` knows about one answer."""

    rubric_id: str
    """The rubric's id."""
    score: float
    """The score, in [0, max_score]."""
    max_score: float
    """The rubric's max_score."""
    percent: float
    """score / max_score × 100, rounded to one decimal."""
    points: list[PointResult]
    """One verdict per key point, in rubric order."""
    missing: list[MissingPoint]
    """Points not met (missing, partial, contradicted or unscored), with hints."""
    misconceptions: list[MisconceptionHit]
    """Misconceptions found."""
    language: Literal["zh", "en", "mixed", "unknown"]
    """The answer's detected language."""
    feedback_lang: Literal["zh", "en"]
    """The language of statements, hints and corrections in this result."""
    engine: Literal["matcher", "judge", "hybrid"] = "matcher"
    """Which engines contributed."""
    rubric_version: str
    """Hash of the rubric content; results from different versions are not comparable."""
    flags: list[str] = []
    """Conditions worth a human look: injection_suspected, empty_answer, truncated, …"""
    needs_review: bool = False
    """True when any point needs review or a flag calls for it."""
    meta: dict[str, object] = {}
    """Engine details: the judge's model, prompt hash, token usage, agreement."""

    def point(self, point_id: str) -> PointResult:
        """The verdict for one key point (KeyError if none)."""
        for p in self.points:
            if p.id == point_id:
                return p
        raise KeyError(point_id)
