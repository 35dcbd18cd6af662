"""Negation cues and their scope, on normalised text.

Each part of a match (one phrase, or each concept of an all-of rule) is negated when an
odd number of cues stands before it in its scope, or a denying predicate follows it in its
clause ("调大学习率也没用", "does not help"). A match is negated when any part is.

The scope of a part runs back to the nearest of: its clause start (punctuation, "but",
"因为", a verdict ending its line "不正确\n", …), REACH units, a coordinated new negation
("不用 A 也不用 B": B's scope starts at the second 不用), the connective after a negated
condition ("s1没满就存入s1"), or a fresh noun phrase after a determiner "no" ("no weight
and a third trial"). Cues inside the matched phrases themselves never count, nor do denials
made of the phrase ("错误" in "是错误的"), so a rubric phrase that contains a negation ("不丢弃",
"not used") matches as written, and two cues on one predicate cancel ("不是不关闭", "it's not
true that it isn't off").
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from itertools import accumulate

from .normalize import Normalized

REACH = 24
"""How far before a part a cue still applies, in units: a CJK character is 1, a Latin word 2."""
NEED_REACH = 4
"""How close after a part a "no need" denial (没必要, 不需要, 不必, 用不着) must follow."""
POST_REACH = 30
"""How far after a part a denying predicate still applies, in normalised characters (within its clause)."""
ZH_REACH = 8
"""How far before a part a Chinese cue still applies, in units (CJK character 1, Latin word 2)."""

# fmt: off
# Words that contain a negation character or word but do not negate what follows.
_NOT_CUES_ZH = (
    "不同", "不断", "不仅", "不只", "不光", "不少", "不错", "不过", "不管", "不论", "不久", "不一样", "不得不",
    "不平衡", "不均衡", "无论", "无非", "毫无疑问", "无监督", "非监督", "无标签", "无标注", "无损", "无偏",
    "无穷", "无限", "非常", "非线性", "非凸", "非零", "非负", "非结构化", "非饱和", "莫过于", "并非只", "除非",
    "不然", "要不然", "要不", "无所谓", "不少于", "不低于", "不超过", "不大于", "不小于",
    # "unequal": 不等概率, 不等式, 不等长 (不等于, 不等价 and 不等同 are cues below)
    "不等",
    # A-not-A questions ("whether") and fallbacks ("if that fails")
    "是不是", "有没有", "会不会", "要不要", "能不能", "对不对", "好不好", "可不可以", "用不用", "需不需要",
    "不行就", "不行的话", "实在不行", "再不行",
    # 别/未/无/非 inside ordinary words
    "区别", "个别", "类别", "分别", "特别", "识别", "级别", "差别", "辨别", "鉴别", "性别", "告别", "派别", "别的", "别人",
    "未来", "无关紧要", "并非常",
    # adjectives: "把没用的参数罚到零" describes parameters, it denies nothing
    "没用的", "没有用的", "无用的", "不重要的", "无关的", "不相关的", "不必要的",
)
_CUES_ZH = (
    "并不是", "并不会", "并没有", "并不", "并非", "并未", "不再", "不会", "不是", "不能", "不要", "不用", "不需要",
    "不必", "没必要", "用不着", "没有", "没", "无需", "无须", "无法", "不等于", "不等价", "不等同",
    "不", "未", "非", "别", "勿", "毋", "莫", "无",
)
# Predicates that deny what comes just before them in the clause.
_POST_ZH = (
    "也没用", "没有用", "没什么用", "没用", "不管用", "没效果", "没有效果", "无效", "不起作用", "没有帮助", "没帮助",
    "是错的", "是错误的", "不对", "不成立", "不正确", "不能用", "不好用", "用不了", "不可取", "行不通", "不可用",
    "不靠谱", "不推荐", "不是问题", "不是什么问题", "不成问题", "不是大问题",
)
# fmt: on


# "no need": a denial only right after the claim ("model.eval() 没必要调"), else a plain cue.
_NEED_ZH = ("没必要", "不需要", "不必", "用不着", "无需", "不用")
_BREAKS_ZH = (
    "但是",
    "但",
    "然而",
    "而是",
    "而",
    "却",
    "因为",
    "所以",
    "因此",
    "不过",
    "只是",
    "反而",
    "从而",
    "同时",
    "并且",
    "而且",
    "另外",
    "此外",
    "否则",
    "要不然",
    "不然",
)
_BREAKS_EN = frozenset(
    {"but", "however", "although", "though", "whereas", "because", "since", "so", "while", "yet", "instead", "rather", "then", "which"}
)
_CUE_EN = frozenset({"not", "never", "no", "cannot", "neither", "none", "nothing", "nobody", "hardly", "barely"})
# English non-cues, as (cue, next word) or (previous word, cue) pairs.
_MASK_NEXT_EN = frozenset(
    {
        ("not", "only"),
        ("not", "just"),
        ("no", "matter"),
        ("no", "doubt"),
        ("nothing", "but"),
        ("no", "less"),
        ("not", "least"),
        ("not", "to"),
    }
)
_MASK_PREV_EN = frozenset({("if", "not"), ("or", "not")})
# English denials after the claim: "does not help", "isn't needed", "is useless", "has no effect".
_POST_NEXT_EN = frozenset(
    {"help", "work", "matter", "apply", "needed", "necessary", "required", "true", "correct", "effect", "difference", "useful",
     "recommended", "advisable", "effective", "concern", "issue", "problem"}
)  # fmt: skip
_POST_WORD_EN = frozenset({"useless", "unnecessary", "pointless"})
_POST_AFTER_BE_EN = frozenset({"wrong", "false", "incorrect", "myth"})
_COORD_EN = frozenset({"and", "or", "nor"})
# After a negated condition, a conditional connective starts the consequence, which the cue does
# not govern: "s1没满就直接存入s1", "未满时存入", "不满足则跳过" (but "s1满了就不能存入s1" still denies).
_COND_ZH = frozenset({"就", "则", "时", "话"})
# Characters around the connective that make it part of another word (及时, 时间, 规则, 正则, 成就,
# 就地), an adverb before 就 that keeps the cue's scope ("不一定就好", "不需要提前就设置好"), or a
# phase noun before 时 ("不用训练时统计的均值": at training time, not a condition).
# fmt: off
_COND_NOT_BEFORE = {
    "就": ("成", "将", "迁", "造", "一定", "必然", "必定", "总是", "马上", "立刻", "立即", "也", "早", "才", "这", "那",
          "提前", "已经", "本来", "一开始"),
    "时": (*"及实同临适按暂随准当历耗费超计小平此那有届何彼定过即守",
          "训练", "推理", "测试", "预测", "评估", "验证", "部署", "运行", "微调", "推断", "编译", "反向", "前向"),
    "则": tuple("规原准法细总否正"),
    "话": (),
}
# fmt: on
_COND_NOT_AFTER = {"就": "地绪", "时": "间刻期序长钟延效态代机常", "则": "", "话": ""}
# Cues that deny a whole statement rather than a condition ("并不是越大就越好").
_COND_KEEP = frozenset({"不是", "并不是", "并非"})
_COND_GAP_RE = re.compile(r"[^,;:!?.。\n\"]{1,12}")
# "no" is a determiner of its own noun; "and/or" + an article or determiner opens a fresh noun
# phrase it does not govern ("with no weight added and a third trial").
_FRESH_NP_EN_RE = re.compile(
    r"\s+(?:a|an|the|another|more|some|this|that|these|those|each|every|other|extra|additional|one|two|three|"
    r"several|many|its|their|his|her|our|my|your)\b"
)
# A verdict on its own line ("不正确\n顺序栈指的是存储结构"): the line break ends its clause.
_LINE_END_RE = re.compile(r"[的了啊吧呢。.!\t ]*\n")
_AUX_EN = frozenset({"do", "does", "did", "will", "would", "can", "could", "should", "must", "have", "has", "had", "need", "may"})


def _lexicon() -> dict[str, list[tuple[str, frozenset[str]]]]:
    """Chinese words by first character, longest first, each with its kinds."""
    kinds: dict[str, set[str]] = {}
    for kind, words in (("mask", _NOT_CUES_ZH), ("post", _POST_ZH), ("cue", _CUES_ZH), ("break", _BREAKS_ZH)):
        for w in words:
            kinds.setdefault(w, set()).add(kind)
    lex: dict[str, list[tuple[str, frozenset[str]]]] = {}
    for w, k in kinds.items():
        # a non-cue compound is never a cue or denial, whatever else it is
        lex.setdefault(w[0], []).append((w, frozenset(k - {"cue", "post"} if "mask" in k else k)))
    for entries in lex.values():
        entries.sort(key=lambda e: -len(e[0]))
    return lex


_LEX_ZH = _lexicon()
_NEG_CHARS = frozenset("不没无非未别勿毋莫否")
_DENY_CHARS = _NEG_CHARS | {"错"}
# A line break ends a sentence only before a list item or after a blank line; a hard-wrapped
# sentence ("dropout is not\nturned off") stays one sentence.
NEWLINE_BREAK = r"\n(?=[ \t]*(?:[-*•>]|\d{1,2}[.、)]|\(\d{1,2}\)|\n))|\n[ \t]*\n"
# A full stop ends a sentence unless it sits inside a number or a name ("0.5", "model.eval");
# after a Chinese character it always does ("…上。BN …"). (Written "\.(?<=…\.)", not "(?<=…)\.",
# so every alternative starts with its own character and the regex engine can skip ahead.)
FULL_STOP = r"。|\.(?![0-9a-z])|\.(?<=[\u3400-\u9fff]\.)"
# Brackets are not breaks: "model.eval()" and "f(x)" sit inside a clause.
_PUNCT_BREAK_RE = re.compile(rf"[,;!?:\"]|{FULL_STOP}|\s-+\s|{NEWLINE_BREAK}")
_SENTENCE_RE = re.compile(rf"[;!?]|{FULL_STOP}|{NEWLINE_BREAK}")


class _Analysis:
    """Clause breaks, sentence ends, cues and scope starts of one answer."""

    __slots__ = ("breaks", "coords", "cues", "needs", "posts", "sentences", "starts", "units")

    def __init__(self, norm: Normalized) -> None:
        text = norm.text
        toks = norm.tokens
        self.sentences = [m.end() for m in _SENTENCE_RE.finditer(text)]
        breaks = [m.end() for m in _PUNCT_BREAK_RE.finditer(text)]
        punct = breaks[:]
        cues: list[tuple[int, int]] = []
        posts: list[tuple[int, int]] = []
        needs: list[tuple[int, int]] = []
        coords: list[int] = []
        stops: list[int] = []
        words, starts, ends, cjk = toks.text, toks.start, toks.end, toks.cjk
        lex = _LEX_ZH
        n = len(words)
        skip_until = -1
        # One walk over the tokens finds cues, denials and conjunctions in both languages:
        # far cheaper than regex alternations tried at every character.
        for i in range(n):
            w = words[i]
            pos = starts[i]
            if cjk[i]:
                if w in _COND_ZH and pos >= skip_until and cues and _ends_condition(text, pos, w, cues):
                    stops.append(pos + 1)
                if pos < skip_until or w not in lex:
                    continue
                for word, kinds in lex[w]:
                    if text.startswith(word, pos):
                        end = pos + len(word)
                        skip_until = end
                        if "break" in kinds:
                            breaks.append(end)
                        if "post" in kinds:
                            posts.append((pos, end))
                        if word in _NEED_ZH:
                            needs.append((pos, end))
                        if "cue" in kinds or "post" in kinds:
                            if _verdict_line_end(text, pos, end, whole_line="post" not in kinds):
                                breaks.append(text.index("\n", end) + 1)
                            cues.append((pos, end))
                            before = text[max(0, pos - 8) : pos].rstrip()
                            if before.endswith(("也", "又", "还", "以及")):
                                coords.append(pos)
                        break
                continue
            if w in _BREAKS_EN:
                breaks.append(ends[i])
            elif w in _CUE_EN:
                nxt = words[i + 1] if i + 1 < n and not cjk[i + 1] else ""
                prev = words[i - 1] if i > 0 and not cjk[i - 1] else ""
                if (w, nxt) in _MASK_NEXT_EN or (prev, w) in _MASK_PREV_EN:
                    continue
                end = ends[i]
                if w in ("not", "no", "never"):
                    if nxt in _POST_NEXT_EN:
                        end = ends[i + 1]
                        posts.append((pos, end))
                    elif nxt in ("real", "big", "major", "serious") and i + 2 < n and words[i + 2] in ("concern", "issue", "problem"):
                        end = ends[i + 2]
                        posts.append((pos, end))  # "not a real concern"
                if _verdict_line_end(text, pos, end, whole_line=True):
                    breaks.append(text.index("\n", end) + 1)  # "Not true\nThe stack ..."
                cues.append((pos, ends[i]))
                if prev in _AUX_EN and i > 1:
                    prev = words[i - 2]  # "and do not", "and don't" (do + not share the word)
                if prev in _COORD_EN:
                    coords.append(pos)
            elif (
                w in ("and", "or")
                and cues
                and text[cues[-1][0] : cues[-1][1]] == "no"
                and _last_before(punct, pos) <= cues[-1][0]
                and _FRESH_NP_EN_RE.match(text, ends[i])
            ):
                stops.append(ends[i])
            elif (
                w in _POST_WORD_EN
                or (w in _POST_AFTER_BE_EN and text[max(0, pos - 4) : pos] in ("is ", " is ", "are "))
                or (w == "bad" and i + 1 < n and words[i + 1] == "idea")
            ):
                posts.append((pos, ends[i]))
        breaks.sort()
        self.breaks = breaks
        self.cues = cues
        self.posts = posts
        self.coords = sorted(coords + stops)
        self.needs = needs
        # cumulative reach units at each token start, for measuring how far back a cue is
        self.starts = norm.tokens.start
        self.units = list(accumulate([1 if c else 2 for c in norm.tokens.cjk], initial=0))

    def scope_start(self, pos: int) -> int:
        """Where the negation scope of a part starting at `pos` begins."""
        lo = _last_before(self.breaks, pos)
        lo = max(lo, _last_before(self.coords, pos))
        i = bisect_right(self.starts, pos) - 1
        if i > 0:
            j = bisect_right(self.units, self.units[i] - REACH)
            if j < len(self.starts):
                lo = max(lo, self.starts[j] if self.units[i] - REACH > 0 else 0)
        return lo

    def units_between(self, a: int, b: int) -> int:
        """Reach units of the tokens starting in [a, b)."""
        i = bisect_left(self.starts, a)
        j = bisect_left(self.starts, b)
        return self.units[j] - self.units[i]

    def clause_end(self, pos: int) -> int:
        i = bisect_right(self.breaks, pos)
        return self.breaks[i] - 1 if i < len(self.breaks) else 1 << 30


def _ends_condition(text: str, pos: int, conn: str, cues: list[tuple[int, int]]) -> bool:
    """Whether the connective `conn` at `pos` closes a negated condition opened by the last cue ("没满就")."""
    cs, ce = cues[-1]
    gap = text[ce:pos]
    if text[cs:ce] in _COND_KEEP or not _COND_GAP_RE.fullmatch(gap):
        return False
    if conn == "话":
        return len(gap) > 1 and gap.endswith("的")  # "不满的话"
    nxt = text[pos + 1 : pos + 2]
    return not gap.endswith(_COND_NOT_BEFORE[conn]) and not (nxt and nxt in _COND_NOT_AFTER[conn])


def _verdict_line_end(text: str, start: int, end: int, *, whole_line: bool) -> bool:
    """Whether a cue at [start, end) ends its line, as a verdict does ("不正确\n顺序栈…").

    A denying predicate (不正确, 是错误的) may close a longer line; a plain cue ("不是", "No") only
    a line of its own, so a hard-wrapped "dropout is not\nturned off" stays one clause.
    """
    if not _LINE_END_RE.match(text, end):
        return False
    if not whole_line:
        return True
    line_start = text.rfind("\n", 0, start) + 1
    return text[line_start:start].strip() in ("", "答", "答:")


def _last_before(offsets: list[int], pos: int) -> int:
    i = bisect_right(offsets, pos) - 1
    return offsets[i] if i >= 0 else 0


def _analysis(norm: Normalized) -> _Analysis:
    """The negation analysis of an answer, computed once and memoised on it."""
    cached: _Analysis | None = norm.cache.get("negation")
    if cached is None:
        cached = _Analysis(norm)
        norm.cache["negation"] = cached
    return cached


def same_clause(norm: Normalized, a: int, b: int) -> bool:
    """True when offsets a <= b lie in one clause."""
    breaks = _analysis(norm).breaks
    return bisect_right(breaks, a) == bisect_right(breaks, b)


def same_sentence(norm: Normalized, a: int, b: int) -> bool:
    """True when offsets a <= b lie in one sentence."""
    ends = _analysis(norm).sentences
    return bisect_right(ends, a) == bisect_right(ends, b)


def _spelled_in(cue: str, pattern: str) -> bool:
    """Whether a regex `pattern` asks for `cue` itself (a whole word for Latin cues: "no" is not in "norm")."""
    if cue.isascii():
        return re.search(rf"(?<![a-z]){re.escape(cue)}(?![a-z])", pattern) is not None
    return cue in pattern


def is_negated(norm: Normalized, spans: list[tuple[int, int]], *, pattern: str | None = None) -> bool:
    """Whether a match made of `spans` (its parts) is negated: true when any part is.

    For a regex hit, give its `pattern`: a cue inside the hit then counts too, unless the
    pattern spells it out ("推理时?不缩放" asks for the 不; a gap like ".{0,10}" does not).
    """
    if not spans:
        return False
    a = _analysis(norm)
    if not a.cues and not a.posts:
        return False
    text = norm.text
    for start, end in spans:
        count = 0
        lo = a.scope_start(start)
        for cs, ce in a.cues[bisect_left(a.cues, (lo, 0)) :]:
            if cs >= start:
                if pattern is not None and ce <= end and not _spelled_in(text[cs:ce], pattern):
                    count += 1
                    continue
                if cs >= end:
                    break
                continue
            if ce > start and end > ce:
                if any(ch in _NEG_CHARS for ch in text[start:ce]):
                    continue  # the cue runs into a phrase that spells its own negation ("并不会" + "不会过拟合")
                count += 1  # the phrase begins inside the cue: "不需要" + "需要移动"
                continue
            if any(s <= cs and ce <= e for s, e in spans):
                continue  # a cue inside a matched phrase is what the rubric asked for ("不丢弃")
            if ce > start and not any(ch in _DENY_CHARS for ch in text[cs:start] + text[end:ce]):
                continue  # a denial made of the phrase itself: "错误" in "这种叙述是错误的"
            if not text[cs].isascii() and a.units_between(ce, start) > ZH_REACH:
                continue  # a Chinese cue governs the words right after it, not a whole clause
            count += 1
        for ns, ne in a.needs[bisect_left(a.needs, (end, 0)) :]:
            if ns > end + NEED_REACH or ns > a.clause_end(end):
                break
            if not any(s <= ns and ne <= e for s, e in spans):
                count += 1
                break
        hi = min(end + POST_REACH, a.clause_end(end))
        for ps, pe in a.posts[bisect_left(a.posts, (end, 0)) :]:
            if ps > hi:
                break
            if any(s <= ps and pe <= e for s, e in spans):
                continue
            # "并不是没用" / "isn't useless": a cue right before the denial cancels it
            k = bisect_left(a.cues, (ps, 0))
            if k > 0 and a.cues[k - 1][1] >= ps - 2 and a.cues[k - 1][0] >= end:
                continue
            count += 1
        if count % 2:
            return True
    return False
