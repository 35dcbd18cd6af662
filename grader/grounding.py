"""Grounding: a judge's evidence quote counts only if it really is in the answer.

Both sides are compared after normalisation (NFKC, case folding, simplified Chinese, Chinese
punctuation) with whitespace and punctuation removed, so a model that re-spaces or re-punctuates
a quote still matches; beyond that a small fuzzy tolerance (rapidfuzz partial ratio) forgives a
typo in a longer quote. A quote that only matches text addressed to the grader earns nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz

from .normalize import Normalized, normalize_text
from .result import Evidence

MIN_FUZZY_CHARS = 12
"""Quotes shorter than this (after compaction) must match exactly."""
FUZZY_CUTOFF = 90.0
"""Minimum rapidfuzz partial-ratio score for a fuzzy match, 0-100."""
MAX_QUOTE_CHARS = 400


def _keep(ch: str) -> bool:
    return ch.isalnum()


@dataclass(slots=True)
class Compact:
    """Normalised text with whitespace and punctuation removed, and offsets back into it."""

    text: str
    offsets: list[int]
    """offsets[i] is the normalised-text offset of compact character i."""


def compact(norm_text: str) -> Compact:
    """Drop everything but letters, digits and CJK characters, remembering where each came from."""
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(norm_text):
        if _keep(ch):
            chars.append(ch)
            offsets.append(i)
    return Compact("".join(chars), offsets)


@dataclass(slots=True)
class Grounded:
    """Where a quote sits in the answer, or why it does not."""

    evidence: Evidence | None
    """The quoted span in the original answer; None when the quote is not grounded."""
    span: tuple[int, int] | None = None
    """The span in normalised offsets."""
    score: float = 0.0
    """100 for an exact match, else the fuzzy score."""
    reason: str | None = None
    """Why the quote was rejected."""


class Grounder:
    """Checks quotes against one answer (compacted once)."""

    def __init__(self, norm: Normalized, blocked: list[tuple[int, int]] | None = None) -> None:
        self.norm = norm
        self.compact = compact(norm.text)
        self.blocked = blocked or []
        """Normalised spans a quote may not come from (text addressed to the grader)."""

    def locate(self, quote: str) -> Grounded:
        """Find `quote` in the answer; see the module docstring for the rules."""
        if not quote or not quote.strip():
            return Grounded(None, reason="no quote")
        if len(quote) > MAX_QUOTE_CHARS:
            return Grounded(None, reason="quote too long")
        q = compact(normalize_text(quote)).text
        if not q:
            return Grounded(None, reason="quote has no words")
        hay = self.compact.text
        at = hay.find(q)
        score = 100.0
        if at >= 0:
            c_start, c_end = at, at + len(q)
        elif len(q) >= MIN_FUZZY_CHARS and hay:
            al = fuzz.partial_ratio_alignment(q, hay, score_cutoff=FUZZY_CUTOFF)
            if al is None or al.dest_end <= al.dest_start:
                return Grounded(None, reason="quote not found in the answer")
            c_start, c_end, score = al.dest_start, al.dest_end, al.score
        else:
            return Grounded(None, reason="quote not found in the answer")
        start = self.compact.offsets[c_start]
        end = self.compact.offsets[c_end - 1] + 1
        if score < 100:
            start, end = _snap_words(self.norm.text, start, end)
        if self._blocked(start, end):
            return Grounded(None, span=(start, end), reason="quote is text addressed to the grader")
        s, e = self.norm.span(start, end)
        return Grounded(Evidence(start=s, end=e, text=self.norm.original[s:e]), span=(start, end), score=round(score, 1))

    def _blocked(self, start: int, end: int) -> bool:
        # Rejected when most of the quote lies in blocked text: an honest quote next to an
        # injection still counts, a quote of the injection itself does not.
        inside = sum(max(0, min(end, e) - max(start, s)) for s, e in self.blocked)
        return inside * 2 >= (end - start)


def _snap_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a fuzzy span to whole Latin words (an alignment may start or stop mid-word)."""
    while start > 0 and text[start - 1].isascii() and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end].isascii() and text[end].isalnum() and text[end - 1].isalnum():
        end += 1
    return start, end
