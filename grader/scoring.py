"""Point verdicts → a score. All score arithmetic lives here, never in an engine."""

from __future__ import annotations

import math

from .result import MisconceptionHit, PointResult
from .rubric import CountScoring, Rubric


def raw_score(rubric: Rubric, points: list[PointResult]) -> float:
    """The score before penalties: weighted share of max_score, or the count table."""
    if isinstance(rubric.scoring, CountScoring):
        met = sum(1 for p in points if p.status == "met")
        table = rubric.scoring.table
        return float(table[min(met, len(table) - 1)])
    total = sum(p.weight for p in points)
    earned = sum(p.weight * p.credit for p in points)
    return rubric.max_score * earned / total if total else 0.0


def final_score(rubric: Rubric, points: list[PointResult], misconceptions: list[MisconceptionHit]) -> float:
    """Raw score minus penalties, clamped to [0, max_score], rounded to 0.1% of max_score."""
    score = raw_score(rubric, points) - sum(m.penalty for m in misconceptions)
    # 0.1 for max_score 10 or 100, 0.01 for 3, 1e-4 for 0.04: small scales keep their precision
    digits = max(1, 2 - math.floor(math.log10(rubric.max_score)))
    return round(min(max(score, 0.0), rubric.max_score), digits)
