"""Combining the matcher and the judge into final point verdicts.

Policies (``--judge-policy``):

- ``review`` (default): the matcher decides the points it settled (met); the judge rules on the
  points the matcher found missing, partial or contradicted.
- ``full``: the judge rules on every point; the matcher's evidence is given to it as hints.

Whatever the policy:

- a judge verdict earns credit only with a grounded quote (see grounding.py);
- with ``--samples N`` the grounded verdicts are voted per point; a tie goes to the lower verdict,
  and agreement below the threshold sets ``needs_review``;
- when the answer addresses the grader (injection suspected) the judge may lower a point but
  never raise it above the matcher's verdict;
- the judge may add misconceptions (penalties) but never remove the matcher's;
- if the judge could not rule on a point, the matcher's verdict stands, marked ``unscored`` (or
  kept ``met``, so count-scored rubrics lose nothing), with the reason, and needs review.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from .result import FLAG_DISAGREEMENT, FLAG_UNSCORED, Evidence, MisconceptionHit, PointResult, Status
from .rubric import Rubric

FLAG_UNGROUNDED = "ungrounded_quote"
VERDICTS: tuple[Status, ...] = ("contradicted", "missing", "partial", "met")
"""Judge verdicts from lowest to highest (a vote tie goes to the lower one)."""
_POSITIVE = {"met", "partial"}


@dataclass
class JudgedPoint:
    """One sample's grounded verdict on one key point."""

    verdict: Status
    """The verdict after grounding: a claim without a real quote becomes `missing`."""
    evidence: Evidence | None
    reason: str
    claimed: Status
    """What the judge said before grounding."""
    grounding_error: str | None = None


@dataclass
class JudgedMisconception:
    """One sample's grounded ruling on one misconception."""

    present: bool
    evidence: Evidence | None
    reason: str
    grounding_error: str | None = None


@dataclass
class Vote:
    """The voted verdict on one point across samples."""

    verdict: Status
    agreement: float
    evidence: Evidence | None
    reason: str
    ungrounded: bool
    """True when some sample claimed credit with a quote that is not in the answer."""


def vote(samples: list[JudgedPoint]) -> Vote:
    """Majority of grounded verdicts; a tie goes to the lower verdict."""
    counts = Counter(s.verdict for s in samples)
    top = max(counts.values())
    winner = next(v for v in VERDICTS if counts.get(v) == top)
    chosen = [s for s in samples if s.verdict == winner]
    with_quote = next((s for s in chosen if s.evidence is not None), chosen[0])
    return Vote(
        verdict=winner,
        agreement=round(top / len(samples), 3),
        evidence=with_quote.evidence,
        reason=with_quote.reason,
        ungrounded=any(s.grounding_error for s in samples),
    )


def credit_for(status: Status, partial_credit: float) -> float:
    """Share of a point's weight a verdict earns."""
    return 1.0 if status == "met" else partial_credit if status == "partial" else 0.0


def disagree(matcher: Status, judge: Status) -> bool:
    """A real conflict: one engine affirms what the other denies or finds negated."""
    if matcher in _POSITIVE and judge == "contradicted":
        return True
    if matcher == "contradicted" and judge in _POSITIVE:
        return True
    return matcher == "met" and judge == "missing"


@dataclass
class Combined:
    """Final point verdicts and what the combination noticed."""

    points: list[PointResult]
    misconceptions: list[MisconceptionHit]
    flags: list[str] = field(default_factory=list)
    agreement: dict[str, float] = field(default_factory=dict)
    unscored: dict[str, str] = field(default_factory=dict)
    decided_by: dict[str, str] = field(default_factory=dict)
    capped: list[str] = field(default_factory=list)
    """Points whose judge upgrade was withheld because the answer addresses the grader."""
    judge_misconceptions: list[str] = field(default_factory=list)

    @property
    def engine(self) -> Literal["matcher", "judge", "hybrid"]:
        """matcher, judge or hybrid: which engines decided the points."""
        engines = set(self.decided_by.values())
        if len(engines) > 1:
            return "hybrid"
        return "judge" if engines == {"judge"} else "matcher"


def combine(
    rubric: Rubric,
    matcher_points: list[PointResult],
    matcher_misconceptions: list[MisconceptionHit],
    asked: list[str],
    votes: dict[str, Vote] | None,
    mc_votes: dict[str, JudgedMisconception],
    *,
    failure: str | None = None,
    injection: bool = False,
    threshold: float = 0.67,
    lang: str = "en",
) -> Combined:
    """Final verdicts per the module rules. `votes` is None when the judge failed (`failure` says why)."""
    out = Combined(points=[], misconceptions=list(matcher_misconceptions))
    asked_set = set(asked)
    for mp in matcher_points:
        kp = rubric.point(mp.id)
        if mp.id not in asked_set:
            out.points.append(mp)
            out.decided_by[mp.id] = "matcher"
            continue
        v = votes.get(mp.id) if votes is not None else None
        if v is None:
            reason = (
                f"judge could not score this point ({failure or 'no verdict in the reply'}); the matcher's verdict ({mp.status}) stands"
            )
            out.unscored[mp.id] = failure or "no verdict in the reply"
            out.points.append(
                mp.model_copy(update={"status": "met" if mp.status == "met" else "unscored", "reason": reason, "needs_review": True})
            )
            out.decided_by[mp.id] = "matcher"
            continue
        out.agreement[mp.id] = v.agreement
        credit = credit_for(v.verdict, kp.partial_credit)
        if injection and credit > mp.credit:
            out.capped.append(mp.id)
            out.points.append(
                mp.model_copy(
                    update={
                        "reason": f"the judge said {v.verdict}, not accepted: the answer addresses the grader; the matcher's verdict stands",
                        "needs_review": True,
                    }
                )
            )
            out.decided_by[mp.id] = "matcher"
            continue
        conflict = disagree(mp.status, v.verdict)
        low_agreement = v.agreement < threshold
        reason = v.reason
        if v.ungrounded:
            reason = f"{reason} (a quote given by the judge is not in the answer and earned nothing)".strip()
        out.points.append(
            PointResult(
                id=mp.id,
                status=v.verdict,
                credit=credit,
                weight=mp.weight,
                evidence=[v.evidence] if v.evidence is not None else [],
                engine="judge",
                reason=reason[:300] or None,
                needs_review=conflict or low_agreement or v.ungrounded,
            )
        )
        out.decided_by[mp.id] = "judge"
        if conflict:
            out.flags.append(FLAG_DISAGREEMENT)
        if v.ungrounded:
            out.flags.append(FLAG_UNGROUNDED)
    known = {m.id for m in matcher_misconceptions}
    for mc in rubric.misconceptions:
        j = mc_votes.get(mc.id)
        if j is None or mc.id in known or not j.present or j.evidence is None:
            continue
        out.misconceptions.append(MisconceptionHit(id=mc.id, penalty=mc.penalty, correction=mc.correction.get(lang), evidence=[j.evidence]))
        out.judge_misconceptions.append(mc.id)
        out.flags.append(FLAG_DISAGREEMENT)
    if out.unscored:
        out.flags.append(FLAG_UNSCORED)
    out.flags = sorted(set(out.flags))
    return out
