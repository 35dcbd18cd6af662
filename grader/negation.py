"""Negation cues and clause scope, on normalised text.

A match is negated when an odd number of cues stands before it in its clause (within
`REACH` characters) or between the parts of an all-of match, not counting cues inside
the matched phrases themselves. Two cues cancel: "不是不关闭", "isn't not used".
"""

from __future__ import annotations

import re
from bisect import bisect_right

from .normalize import Normalized

REACH = 24
"""How far before a match a cue still applies, in units: a CJK character is 1, a Latin word 2."""

# Words that contain a negation character or word but do not negate what follows.
_NOT_CUES_ZH = (
    "不同",
    "不断",
    "不仅",
    "不只",
    "不光",
    "不少",
    "不错",
    "不过",
    "不管",
    "不论",
    "不久",
    "不一样",
    "不得不",
    "不平衡",
    "不均衡",
    "无论",
    "无非",
    "毫无疑问",
    "无监督",
    "非监督",
    "无标签",
    "无标注",
    "无损",
    "无偏",
    "无穷",
    "无限",
    "非常",
    "非线性",
    "非凸",
    "非零",
    "非负",
    "非结构化",
    "非饱和",
    "否则",
    "是否",
    "能否",
    "可否",
    "与否",
    "莫过于",
    "并非只",
    "除非",
)
_NOT_CUES_EN = (
    r"not only",
    r"not just",
    r"no matter",
    r"no doubt",
    r"whether or not",
    r"if not",
    r"nothing but",
    r"not to mention",
    r"no less than",
)
_CUES_ZH = (
    "并不是",
    "并不会",
    "并没有",
    "并不",
    "并非",
    "并未",
    "不再",
    "不会",
    "不是",
    "不能",
    "不要",
    "不用",
    "不需要",
    "不必",
    "没有",
    "没",
    "无需",
    "无须",
    "无法",
    "不",
    "未",
    "非",
    "别",
    "勿",
    "毋",
    "莫",
    "无",
    "否",
)
_CUES_EN = (
    r"not",
    r"never",
    r"no",
    r"cannot",
    r"neither",
    r"none",
    r"nothing",
    r"nobody",
    r"hardly",
    r"barely",
    r"dont",
    r"doesnt",
    r"didnt",
    r"isnt",
    r"arent",
    r"wasnt",
    r"werent",
    r"cant",
    r"couldnt",
    r"shouldnt",
    r"wouldnt",
    r"wont",
    r"havent",
    r"hasnt",
    r"mustnt",
    r"\w+n't",
)

_MASK_RE = re.compile("|".join(sorted(_NOT_CUES_ZH, key=len, reverse=True)) + "|" + r"\b(?:" + "|".join(_NOT_CUES_EN) + r")\b")
_CUE_RE = re.compile("|".join(sorted(_CUES_ZH, key=len, reverse=True)) + "|" + r"\b(?:" + "|".join(_CUES_EN) + r")\b")
# Clause breaks: punctuation, and conjunctions that start a new claim.
_BREAK_RE = re.compile(
    r"(?=[,;!?\n:()\[\]\".bhatwysir但然而却因所不只反从同并另此])(?:"
    r"[,;!?\n:()\[\]\"]|\.(?![0-9a-z])|"
    r"\b(?:but|however|although|though|whereas|because|since|so|while|yet|instead|rather|and then|then|which)\b|"
    r"但是|但|然而|而是|而|却|因为|所以|因此|不过|只是|反而|从而|同时|并且|而且|另外|此外)"
)


_SENTENCE_RE = re.compile(r"[;!?\n]|\.(?![0-9a-z])")


class _Analysis:
    __slots__ = ("breaks", "cues", "sentences", "starts", "units")

    def __init__(self, norm: Normalized) -> None:
        text = norm.text
        self.breaks = [m.end() for m in _BREAK_RE.finditer(text)]
        self.sentences = [m.end() for m in _SENTENCE_RE.finditer(text)]
        masked = _MASK_RE.sub(lambda m: " " * len(m.group()), text)
        self.cues = [m.span() for m in _CUE_RE.finditer(masked)]
        # cumulative "reach units" at each token start, for measuring how far back a cue is
        self.starts = norm.tokens.start
        total = 0
        units = []
        for cjk in norm.tokens.cjk:
            units.append(total)
            total += 1 if cjk else 2
        self.units = units


def _analysis(norm: Normalized) -> _Analysis:
    """Clause breaks, sentence ends and cue spans of an answer, computed once and memoised."""
    cached: _Analysis | None = norm.cache.get("negation")
    if cached is None:
        cached = _Analysis(norm)
        norm.cache["negation"] = cached
    return cached


def _reach_start(a: _Analysis, pos: int) -> int:
    """The offset REACH units before `pos`."""
    i = bisect_right(a.starts, pos) - 1
    if i <= 0:
        return 0
    target = a.units[i] - REACH
    j = bisect_right(a.units, target)
    return a.starts[j] if j < len(a.starts) else pos


def clause_start(norm: Normalized, pos: int) -> int:
    """The offset where the clause containing `pos` begins."""
    breaks = _analysis(norm).breaks
    i = bisect_right(breaks, pos) - 1
    return breaks[i] if i >= 0 else 0


def same_clause(norm: Normalized, a: int, b: int) -> bool:
    """True when offsets a <= b lie in one clause."""
    breaks = _analysis(norm).breaks
    return bisect_right(breaks, a) == bisect_right(breaks, b)


def same_sentence(norm: Normalized, a: int, b: int) -> bool:
    """True when offsets a <= b lie in one sentence."""
    ends = _analysis(norm).sentences
    return bisect_right(ends, a) == bisect_right(ends, b)


def is_negated(norm: Normalized, spans: list[tuple[int, int]]) -> bool:
    """Whether the matched `spans` (sorted parts of one match) are negated.

    Cues are counted from the first part's clause start (at most REACH units back)
    to the end of the last part, skipping cues that fall inside a matched part.
    """
    if not spans:
        return False
    a = _analysis(norm)
    cues = a.cues
    if not cues:
        return False
    first = min(s for s, _ in spans)
    last = max(e for _, e in spans)
    lo = max(clause_start(norm, first), _reach_start(a, first))
    count = 0
    for cs, ce in cues:
        if ce <= lo:
            continue
        if cs >= last:
            break
        if any(s <= cs and ce <= e for s, e in spans):
            continue  # the cue is part of the phrase the rubric asked for ("不丢弃")
        count += 1
    return count % 2 == 1
