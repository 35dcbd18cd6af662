"""Rubric drafts from a reference answer: `grader draft --question TEXT --reference TEXT|FILE`.

The reference is split into key points: one per list item, else per sentence (Chinese sentences
also at commas). A point is earned only by its defining idea: a formula (matched exactly), a
specific glossary term the question does not give away, a long technical word, or two of the
clause's top terms together; common words (支持, 指针, activations, probability, reduce …) never
earn a point alone, and rules the question itself or "I don't know" would earn are dropped. A
leading verdict (错误, "No") is its own point worth a third of the score, earned only at the start
of an answer; the opposite verdict is a misconception. The draft is checked by grading the
reference with it (a point the reference does not earn falls back to a simpler rule), and carries
`examples:` (the reference high; "I don't know", the question repeated back, the opposite verdict
low) so that `grader check` fails a draft someone makes too lenient. Lines a person should look at
carry ``# REVIEW:`` comments.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import PurePath
from typing import Any

import yaml

from .errors import InputError
from .grade import grade
from .normalize import normalize_text
from .rubric import Rubric, parse_rubric

_CJK = re.compile(r"[\u4e00-\u9fff]")
# List markers start a new clause: "1.", "2、", "(3)", "（4）", "①".
_LIST_MARK = re.compile(r"(?:^|(?<=[\s。；;:：，,.]))(?:[（(]\s*\d{1,2}\s*[)）]|\d{1,2}\s*[.、．)](?![\d.])|[\u2460-\u2473])\s*")
_SENTENCE = re.compile(r"(?<=[。！？；;!?\n])|(?<=[a-z)\]]\.)\s+", re.IGNORECASE)
_CLAUSE_ZH = re.compile(r"[，,：:]")
_CLAUSE_EN = re.compile(r";\s+|:\s+|,\s+which\s+", re.IGNORECASE)
_CLAUSE_EN_FINE = re.compile(r",\s+|;\s+|:\s+|\s+(?:and|which|so that|without|while|whereas|because|but)\s+", re.IGNORECASE)
_EN_WORD = re.compile(r"[a-z][a-z0-9'-]*|\d+")
# A formula or symbolic answer: O(n), 2^(n-1), n/2, (2n+1)/3, a1=3n.
_FORMULA = re.compile(r"[a-z0-9(][a-z0-9()+\-*/^=.]*[()+\-*/^=][a-z0-9()+\-*/^=.]*[a-z0-9)]|o\([a-z0-9^ ]+\)")
_MATH_WORDS = frozenset({"log", "lg", "ln", "pow", "max", "min", "sqrt"})
_NEG_ZH = ("不支持", "不能", "不会", "不需", "不需要", "不必", "不是", "不可以", "不一定", "没有", "无法", "无需", "不")
_ZH_FUNCTION = re.compile(
    r"(?:更加|而且|并且|的|了|是|在|和|与|或者|或|及|也|就|都|而|且|并|着|地|得|这|那|个|一个|可以|需要|进行|使用|如果|但是|但|"
    r"由于|因为|所以|因此|即|则|时|对|把|将|被|为|从|到|其|该|中|上|下|之|等|很|较|更|只|仅|每|各|所有|任何|按照|按|"
    r"我们|它们|它|当|所|以|于|让|使得|使|能够|能|会|要|还|又|再|后|前|情况|这样|那么|以及|可|有|进行|访问|产生|造成|容易|之间|需|要求|说明|例如|比如|可能|一定|直接|只要|即可|完成|相应|存在|"
    r"假设|举个例子|我们注意到|注意到|确实|这种|一种|某些|某个|一些|如下|过程中|过程|方面|方式|用于|通过|比较|非常|十分|"
    r"建议|采用|应该|应|宜|首先|其次|然后|最后|此外|另外|同时|总之|也就是|就是|称为|叫做|所示|分别)"
)
# A verdict that opens the reference ("错误。", "No,", "单链表不可以"): its own point, earned only
# by the same verdict at the start of an answer; the opposite verdict is a misconception.
_VERDICTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("verdict-false", ("错误", "错", "不正确", "不对", "false", "incorrect", "wrong", "×"), "verdict-true"),
    ("verdict-true", ("正确", "对", "true", "correct", "√"), "verdict-false"),
    ("verdict-no", ("不可以", "不能", "不行", "否", "不是", "no", "not necessarily", "not always", "cannot", "can't"), "verdict-yes"),
    ("verdict-yes", ("可以", "能", "是", "是的", "yes", "can"), "verdict-no"),
)


def _words(text: str) -> list[str]:
    """Words of a long word list kept as wrapped text (easier to read and edit than a list literal)."""
    return text.split()


EN_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "you",
        "we",
        "they",
        "them",
        "their",
        "there",
        "here",
        "what",
        "which",
        "who",
        "how",
        "why",
        "when",
        "where",
        "would",
        "could",
        "should",
        "will",
        "can",
        "may",
        "might",
        "must",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "so",
        "than",
        "then",
        "too",
        "very",
        "just",
        "also",
        "about",
        "into",
        "over",
        "out",
        "up",
        "down",
        "more",
        "most",
        "some",
        "any",
        "each",
        "other",
        "such",
        "only",
        "own",
        "same",
        "all",
        "both",
        "few",
        "because",
        "while",
        "until",
        "again",
        "once",
        "one",
        "two",
        "uses",
        "used",
        "using",
        "use",
        "make",
        "makes",
        "made",
        "need",
        "needs",
        "get",
        "gets",
    ]
)
# Words too vague to prove knowledge in an English clause (kept out of EN_STOP, which `suggest` shares).
_VAGUE_EN = frozenset(
    [
        "need",
        "know",
        "needed",
        "known",
        "occurs",
        "occur",
        "when",
        "area",
        "certain",
        "allow",
        "allows",
        "allowed",
        "like",
        "many",
        "much",
        "another",
        "other",
        "something",
        "thing",
        "things",
        "way",
        "ways",
        "different",
        "same",
        "called",
        "given",
        "good",
        "better",
        "best",
        "able",
        "also",
        "still",
        "well",
        "important",
        "example",
        "instance",
    ]
)
# Common English words that never earn a point, whatever their length: the shared stop list, the
# vague words above, more function words and prepositions, and generic verbs that describe nothing
# by themselves (turn, scale, use, make, happen …). Inflected forms count too (`_en_common`):
# "turned", "scales", "happens".
_EN_COMMON = (
    EN_STOP
    | _VAGUE_EN
    | frozenset(
        _words(
            """
    i me my myself our ours ourselves your yours yourself yourselves he him his himself she her hers
    herself itself theirs themselves whom whose am having doing done against between through during
    before after above below off under further no nor not now still even ever every either neither
    rather quite much many often always never sometimes usually well really maybe perhaps already
    yet within without across along among amongst around behind beyond despite except inside outside
    since toward towards upon onto via per unlike throughout whereas whether though although however
    therefore thus hence instead otherwise meanwhile whenever wherever whatever whichever whoever
    anyway besides next last first second third etc go goes went gone going got gotten turn scale
    happen act keep kept take took taken give gave given put set show shown help work run ran let
    call try become became seem leave left hold held bring brought begin began begun start mean
    meant say said tell told know knew known think thought guess want like look see saw seen feel
    felt lead led come came cause allow involve perform affect occur consider remain follow include
    contain provide produce require create result end apply applied enable ensure deal handle matter
    thing things stuff way ways something anything everything nothing someone somebody lot lots bit
    kind sort type part sure
    """
        )
    )
)
MAX_TERMS = 4


def _en_common(word: str) -> bool:
    """Whether an English word, or its base form (turned -> turn, scales -> scale, happening ->
    happen, applies -> apply, running -> run), is a common word that never earns a point."""
    w = word.lower()
    forms = {w}
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("d", ""), ("ing", ""), ("ing", "e")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 2:
            base = w[: len(w) - len(suffix)] + repl
            forms.add(base)
            if len(base) >= 3 and base[-1] == base[-2] and suffix in ("ed", "ing"):
                forms.add(base[:-1])  # running -> run, stopped -> stop
    return bool(forms & _EN_COMMON)


# Glossary concepts too common to earn a point alone, and never a pair with another common one:
# naming them shows no knowledge ("I don't know, something about neurons and probability").
GENERIC = frozenset(
    {
        "memory",
        "operation",
        "element",
        "sequence",
        "efficiency",
        "average",
        "comparison",
        "training",
        "node",
        "feature",
        "parameter",
        "search",
        "key",
        "pointer",
        "index",
        "insertion",
        "deletion",
        "traverse",
        "neuron",
        "probability",
        "gradient",
        "loss-function",
        "label",
        "time-complexity",
        "sorting",
        "tree",
        "array",
        "string",
        "address",
        "training-set",
        "test-set",
        "linear-list",
        "stack",
        "queue",
        "sorted",
        "reduce",
        "increase",
        "more",
        "random",
        "zero",
        "modify",
        "activation-function",
        "variance",
        "bias",
        "noise",
    }
)
# Glossary concepts that say which way something changes: weak alone, but they carry the claim
# ("reduces overfitting" against "increases overfitting"), so they rank above other common words.
DIRECTION = frozenset({"reduce", "increase", "more", "random", "zero", "modify"})
# Literal words as common as the generic glossary concepts.
COMMON_WORDS = frozenset(
    _words(
        """
    activation activations value values number numbers model models data network networks layer
    layers weight weights input inputs output outputs validation prediction predictions learning
    accuracy result results problem problems method methods time step steps case cases part parts
    kind type types system process information point points problem answer set sets 支持 额外 需要 数据 问题
    方法 时间 空间 结构 位置 实现 大小 数量 长度 结果 方面 元素 一般 特点 不同 相同 简单 复杂 修改 存储 查询 访问 增加 减少 提高 降低 保证 保存 得到 存放 处理 执行
    判断 确定 利用 包括 包含 具有 满足
    """
    )
)
# Everyday English words of 7+ letters: long, but naming them shows no subject knowledge.
_EVERYDAY_EN = frozenset(
    _words(
        """because between another through without different corresponding complementary together beginning
    continue continues continued example important increase decrease process processes information
    including include includes general problem problems already although however therefore whether
    something anything everything nothing someone usually actually finally simply quickly exactly
    possible possibly probably certain certainly instead rather several various similar similarly
    following followed another others particular specific specifically necessary necessarily
    directly correct correctly incorrect original originally complete completely completed contains
    contain containing becomes because allowing provides provide provided produces produce produced
    requires require required results resulting prevents prevent improves improve improved reduces
    describe described explain explained answer answers question questions student students
    experiment procedure additional replicate another material materials measure measured amount
    amounts container containers remaining changes changed change moving movement carried carrying
    recognizes recognize recognized bonded attached linked added adjacent opposite entire whole"""
    )
)
PARTIAL_CREDIT = 0.5
VERDICT_SHARE = 0.5
"""The verdict's weight against all explanation points together (1/3 of the score): a bare
verdict, half the time a guess, must not pass."""
VERDICT_PENALTY = 0.3
"""The opposite verdict is a misconception costing this share of max_score."""
CONCAVE: float | None = 0.5
"""Without a verdict or an asked count: count scoring with table[k] = max * (k/n)**CONCAVE, so a
partial answer gets most of the marks, as human graders give them (half the points: 71 %)."""
GIVEN = 0.3
"""Salience factor for a term the question already uses."""


@dataclass
class GlossaryEntry:
    """One concept: synonyms in zh and en."""

    phrases: list[str]
    key: str
    """A slug for the concept, used as the term bundle's name."""


@lru_cache(maxsize=1)
def glossary() -> tuple[GlossaryEntry, ...]:
    """The built-in glossary (grader/glossary.yaml), parsed once."""
    text = resources.files(__package__).joinpath("glossary.yaml").read_text(encoding="utf-8")
    out = []
    for phrases in yaml.safe_load(text):
        names = [str(p) for p in phrases]
        latin = next((p for p in names if p.isascii()), names[0])
        key = re.sub(r"[^a-z0-9]+", "-", latin.lower()).strip("-") or "t" + hashlib.sha1(latin.encode()).hexdigest()[:6]
        out.append(GlossaryEntry(phrases=names, key=key))
    return tuple(out)


def _occurs(norm: str, phrase: str) -> int:
    """Where normalised `phrase` occurs in normalised text `norm` (whole words for Latin), or -1."""
    p = normalize_text(phrase)
    if not p:
        return -1
    if _CJK.search(p):
        return norm.find(p)
    m = re.search(r"(?<![a-z0-9])" + re.escape(p) + r"(?![a-z0-9])", norm)
    return m.start() if m else -1


@dataclass
class Concept:
    """A key term of a clause: a glossary bundle, a formula or a literal phrase."""

    text: str
    """The words as they appear in the (normalised) reference."""
    start: int
    entry: GlossaryEntry | None = None
    negated: bool = False
    core: str = ""
    """For a negated term, the term without its negation cue."""
    kind: str = "word"
    """"glossary", "formula" or "word"."""
    salience: float = 0.0
    """How much naming this term shows knowledge: high for specific concepts, low for words the question uses."""
    alternatives: list[str] = field(default_factory=list)
    """Other ways to write it (glossary synonyms, formula spellings); empty for a bare phrase."""

    @property
    def length(self) -> int:
        return len(self.text)

    @property
    def bundle(self) -> str:
        """The term bundle's name when the concept has alternatives."""
        if self.entry is not None:
            return ("not-" if self.negated else "") + self.entry.key
        words = _EN_WORD.findall(self.text)
        return "f-" + ("-".join(words)[:24].strip("-") or hashlib.sha1(self.text.encode()).hexdigest()[:6])


@dataclass
class DraftPoint:
    """One drafted key point."""

    id: str
    clause: str
    concepts: list[Concept]
    rule: list[Any] = field(default_factory=list)
    """The point's `match:` rules (any one earns it)."""
    partial: list[Any] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    """The other subjects of a comparison: "链表支持随机访问" must not earn the 顺序表 point."""
    review: list[str] = field(default_factory=list)
    weight: float = 1.0


def _pieces(reference: str) -> list[str]:
    """The reference's clauses in order; a Chinese sentence's heading ("链表：…") is joined to its
    first clause, never to the sentence before."""
    text = _LIST_MARK.sub("\n", reference)
    parts: list[str] = []
    sentences = [s.strip(" \t\n。；;！？!?.,，") for s in _SENTENCE.split(text)]
    sentences = [s for s in sentences if s]
    for sentence in sentences:
        if _CJK.search(sentence):
            pieces = _CLAUSE_ZH.split(sentence)
            head = re.match(r"\s*([^，,：:]{1,8})[：:]\s*", sentence)
            if head and len(pieces) >= 2 and _verdict(head.group(1)) is None:
                pieces = [head.group(1) + "：" + pieces[1], *pieces[2:]]
        else:
            # English sentences are points of their own; a one-sentence reference splits at its clauses.
            pieces = _CLAUSE_EN.split(sentence) if len(sentences) > 1 else _CLAUSE_EN_FINE.split(sentence)
        parts += [p.strip(" \t,，") for p in pieces if p.strip(" \t,，")]
    return parts


def _list_items(reference: str) -> list[str] | None:
    """The items of a numbered list ("1. … 2. …"), or None when the reference is not one."""
    marks = list(_LIST_MARK.finditer(reference))
    if len(marks) < 2:
        return None
    head = reference[: marks[0].start()].strip(" \t\n:：")
    items = [reference[m.end() : n.start() if n else len(reference)] for m, n in zip(marks, [*marks[1:], None], strict=True)]
    items = [i.strip(" \t\n。；;,，.") for i in items]
    return ([head] if head else []) + [i for i in items if i]


def _size(p: str) -> int:
    return len(normalize_text(p)) if _CJK.search(p) else 2 * len(p.split())


def split_clauses(reference: str, *, max_points: int = 8) -> list[str]:
    """The reference as clauses: one per list item, else sentences (English ones also at ", which",
    Chinese ones at commas); short fragments join their neighbour (a leading verdict such as 错误
    stays alone), and the shortest neighbours merge until `max_points` remain."""
    merged: list[str] = []
    items = _list_items(reference)
    if items is not None:
        merged = items  # one key point per list item, however short ("3. Use dropout.")
    else:
        for p in _pieces(reference):
            joiner = "，" if _CJK.search(p) else ", "
            if merged and _predicate_fragment(p) and _verdict(merged[-1]) is None:
                merged[-1] = merged[-1] + joiner + p  # "插入和删除要移动元素，是 O(n)": the O(n) is said of that clause
            elif merged and _size(p) < 6 and not (len(merged) == 1 and _verdict(merged[0]) is not None):
                merged[-1] = merged[-1] + joiner + p
            elif merged and not _CJK.search(p) and len(merged[-1].split()) < 3 and _verdict(merged[-1]) is None:
                merged[-1] = merged[-1] + joiner + p
            else:
                merged.append(p)
    while len(merged) > max_points:
        first = 1 if _verdict(merged[0]) is not None and len(merged) > 2 else 0
        i = min(range(first, len(merged) - 1), key=lambda k: _size(merged[k]) + _size(merged[k + 1]))
        sep = "，" if _CJK.search(merged[i]) else "; "
        merged[i : i + 2] = [merged[i] + sep + merged[i + 1]]
    return merged


def _predicate_fragment(piece: str) -> bool:
    """A Chinese piece that is only a predicate with no subject of its own ("是 O(n)", "均为O(1)"):
    nothing but function words around a formula. It belongs to the clause before it."""
    norm = normalize_text(piece)
    if not _FORMULA.search(norm):
        return False
    rest = _ZH_FUNCTION.sub("", _FORMULA.sub("", norm)).replace("均", "")
    return not re.search(r"[\u4e00-\u9fffa-z]", rest)


def _verdict(clause: str) -> tuple[str, tuple[str, ...], str] | None:
    """(key, words, opposite key) of the verdict a clause opens with, when it is little more than a verdict."""
    norm = normalize_text(clause)
    for key, words, opposite in _VERDICTS:
        for w in words:
            if norm == w or (len(w) > 1 and (norm.startswith(w + ",") or norm.startswith(w + " ")) and len(norm) <= len(w) + 1):
                return key, words, opposite
    return None


# Verdicts that say the same thing in answers: "不是" answers a true/false question as "错误" does.
_SAME_VERDICT = {"verdict-false": "verdict-no", "verdict-no": "verdict-false", "verdict-true": "verdict-yes", "verdict-yes": "verdict-true"}
_MORE_VERDICT_WORDS = {"verdict-false": ("不一定", "并非", "并不是"), "verdict-no": ("不一定", "并非", "并不是")}


def verdict_regex(key: str) -> str:
    """A regex for the verdict `key` at the start of an answer ("错误。", "答：该叙述是错误的",
    "No,"), whole words only: 对 must not match 对于, "no" must not match "I have no idea"."""
    words = [w for k, ws, _ in _VERDICTS if k in (key, _SAME_VERDICT[key]) for w in ws] + list(_MORE_VERDICT_WORDS.get(key, ()))
    # 是 alone says yes only to a yes/no question, never to a true/false one ("是错误的").
    words = [w for w in dict.fromkeys(words) if not (w == "是" and key == "verdict-true")]
    zh = sorted((re.escape(w) for w in words if not w.isascii()), key=len, reverse=True)
    en = sorted((re.escape(normalize_text(w)) for w in words if w.isascii()), key=len, reverse=True)
    alts = []
    if zh:
        # An optional lead-in ("答：", "这个说法是", "第一点答案："), the verdict, then no further
        # Chinese character: 对 must not match 对于, 正确 not 正确率.
        lead = r"(?:答\s*:?\s*)?(?:第一[点问]\s*(?:答案)?\s*:?\s*)?(?:这个|这种|该|此|题中的?|题目的?|原)?(?:说法|叙述|命题|结论|答案|判断)?\s*(?:是|为)?"
        alts.append(lead + "(?:" + "|".join(zh) + r")的?(?![\u4e00-\u9fff])")
    if en:
        alts.append(r"(?:the answer is\s+|this is\s+)?(?:" + "|".join(en) + r")\b(?!\s+idea)")
    return r"^\s*(?:" + "|".join(alts) + ")"


def formula_regex(f: str) -> str:
    """A regex for formula `f` exactly, with its usual spellings (2^(n-1) = 2的n-1次方 = 2**(n-1)):
    exponents, signs and the contents of O(...) must agree, so O(n^2) does not earn O(n)."""

    def tok(x: str) -> str:
        return r"\s*".join(re.escape(ch) for ch in x if not ch.isspace())

    alts = [tok(f)]
    m = re.fullmatch(r"(\w+)\^\(([^()]+)\)", f)
    if m:
        base, exp = m.groups()
        alts += [f"{tok(base)}\\s*的\\s*{tok(exp)}\\s*次方", f"{tok(base)}\\s*\\*\\*\\s*\\(\\s*{tok(exp)}\\s*\\)"]
    m = re.fullmatch(r"(\w+)\^(\w+)", f)
    if m:
        alts.append(f"{tok(m.group(1))}\\s*的\\s*{tok(m.group(2))}\\s*次方")
    # Not inside a bigger formula: no operand or operator on either side; a bracket only when it
    # belongs to an exponent or a call (2^(n-1) does not contain the formula n-1).
    before = r"(?<![a-z0-9_^+\-*/])(?<![a-z0-9_^]\()"
    after = r"(?![a-z0-9_^+\-*/(])(?!\)\s*[\^*/+\-])"
    return f"{before}(?:{'|'.join(alts)}){after}"


def key_concepts(clause: str, *, limit: int = MAX_TERMS, question: str = "", reference: str = "") -> list[Concept]:
    """The clause's key terms, most salient first: glossary terms, formulas and content words;
    words the question already uses rank low, as do words repeated all over the reference."""
    norm = normalize_text(clause)
    qnorm = normalize_text(question)
    rnorm = normalize_text(reference)
    taken = [False] * len(norm)
    found: list[Concept] = []

    def take(start: int, stop: int) -> bool:
        if any(taken[i] for i in range(start, min(stop, len(norm)))):
            return False
        for i in range(start, min(stop, len(norm))):
            taken[i] = True
        return True

    for m in _FORMULA.finditer(norm):
        f = m.group().strip(".")
        # Symbols, not words: every run of letters is a variable or a short function (n, log, o).
        symbolic = all(len(run) == 1 or run in _MATH_WORDS for run in re.findall(r"[a-z]+", f))
        if len(f) >= 3 and symbolic and any(ch.isdigit() or ch in "n" for ch in f) and take(m.start(), m.start() + len(f)):
            found.append(Concept(text=f, start=m.start(), kind="formula"))
    candidates = sorted(((p, e) for e in glossary() for p in e.phrases), key=lambda pe: -len(pe[0]))
    for phrase, entry in candidates:
        pos = _occurs(norm, phrase)
        if pos < 0:
            continue
        stop = pos + len(normalize_text(phrase))
        if not take(pos, stop) or any(c.entry is entry for c in found):
            continue
        found.append(Concept(text=norm[pos:stop], start=pos, entry=entry, kind="glossary", alternatives=list(entry.phrases)))
    # Content outside the glossary: Chinese segments between function words, or English content words.
    rest = "".join(ch if not taken[i] else " " for i, ch in enumerate(norm))
    for m in re.finditer(r"[\u4e00-\u9fff]+|[a-z][a-z0-9'-]*|\d+", rest):
        w = m.group()
        if _CJK.search(w):
            pos = m.start()
            for seg in _ZH_FUNCTION.split(w):
                at = norm.find(seg, pos)
                pos = at + len(seg) if at >= 0 else pos
                # A fragment cut right before a negation ("存储空间不") would match the negated form.
                seg = seg.rstrip("不没未非无")
                if seg and 2 <= len(seg) <= 8 and seg not in _NEG_ZH and at >= 0:
                    found.append(Concept(text=seg, start=at))
        elif not _en_common(w) and (len(w) >= 4 or any(ch.isdigit() for ch in w)) and not w.isdigit():
            found.append(Concept(text=w, start=m.start()))
    # A negation right before a term belongs to it: 不支持随机访问 must not match 支持随机访问.
    for c in found:
        before = norm[max(0, c.start - 6) : c.start]
        # A copula or modal may stand between cue and term: 不一定是有序, 不会被删除.
        gap = re.search(r"[是的会被能都]{0,2}$", before)
        core = before[: gap.start()] if gap else before
        cue = next((q for q in _NEG_ZH if core.endswith(q)), None)
        if cue is not None:
            between = before[len(core) :]
            c.negated = True
            c.core = c.text
            c.alternatives = [cue + p for p in c.alternatives if _CJK.search(p)] if c.alternatives else []
            if between:
                c.alternatives = [cue + between + c.text, *c.alternatives] if c.alternatives else []
            c.text = cue + between + c.text
            c.start -= len(cue) + len(between)
            if len(c.alternatives) <= 1:
                c.alternatives, c.entry = [], None
        elif re.search(r"\b(not|no|never|cannot|without)\s*$", before + " " if not _CJK.search(before) else ""):
            c.negated = True
    for c in found:
        c.salience = _salience(c, qnorm, rnorm)
    found.sort(key=lambda c: (-c.salience, -c.length))
    unique: dict[str, Concept] = {}
    for c in found:
        unique.setdefault(c.text, c)  # "complementary" twice is one term
    found = list(unique.values())
    chosen = [c for c in found if c.salience > 0][:limit]
    return chosen


def _salience(c: Concept, qnorm: str, rnorm: str) -> float:
    if c.kind == "formula":
        s = 4.0 if len(c.text) >= 4 else 2.0
    elif c.entry is not None:
        s = (1.2 if c.entry.key in DIRECTION else 1.0) if c.entry.key in GENERIC else 3.0
    elif (c.core or c.text) in COMMON_WORDS:
        s = 1.0
    elif _CJK.search(c.text):
        s = 1.5 if len(c.text) == 2 else 2.0
    else:
        s = 2.0 if len(c.text) >= 6 else 1.5
    if c.negated:
        s += 0.5
    phrases = [c.text] + (c.alternatives if not c.negated else [])
    if qnorm and any(_occurs(qnorm, p) >= 0 for p in phrases):
        s *= GIVEN  # the question gives it away
    elif rnorm.count(c.text) >= 3:
        s *= 0.7  # the reference's topic word, in every clause
    return s


def _concept_rule(c: Concept) -> Any:
    if c.kind == "formula":
        return {"regex": formula_regex(c.text)}
    return f"${c.bundle}" if len(c.alternatives) > 1 else c.text


def _generic(c: Concept) -> bool:
    """A term too common (or given by the question) to show knowledge alone."""
    if c.kind == "formula":
        return False
    if c.entry is not None and c.entry.key in GENERIC:
        return True
    return (c.core or c.text) in COMMON_WORDS or c.salience < 1.0


def _defining(c: Concept, keen: Sequence[Concept]) -> bool:
    """Whether `c` alone carries its clause's idea: a formula, the clause's only specific term, or a
    specific multi-word glossary term (后进先出, weight decay) the question does not give away."""
    if c.kind == "formula":
        return True
    if _generic(c) or c.salience < 2.0:
        return False
    if len(keen) == 1 and (c.entry is not None or len(c.text) >= 3):
        return True
    if c.entry is None:
        # A long technical word (anticodon, cytoplasm, co-adaptation), not an everyday one.
        return not _CJK.search(c.text) and not c.negated and len(c.text) >= 7 and c.text not in _EVERYDAY_EN
    return (
        len(c.text) >= GLOSSARY_SINGLE_ZH
        if _CJK.search(c.text)
        else len(c.text.split()) >= 2 or "-" in c.text or len(c.text) >= GLOSSARY_SINGLE_EN
    )


def _point_id(clause: str, concepts: Sequence[Concept], used: set[str], index: int) -> str:
    words = [c.bundle for c in concepts if c.alternatives] + [w for c in concepts if not c.alternatives for w in _EN_WORD.findall(c.text)]
    base = "-".join(words[:3])[:40].strip("-") or f"point-{index + 1}"
    base = re.sub(r"[^a-z0-9-]+", "-", base).strip("-") or f"point-{index + 1}"
    pid, n = base, 2
    while pid in used:
        pid, n = f"{base}-{n}", n + 1
    used.add(pid)
    return pid


def _slug(text: str) -> str:
    """The default id: the question's first English content words ("dropout-do"), else (a Chinese
    question: no readable slug without pinyin) ``draft-`` and a hash of the question."""
    words = [w for w in _EN_WORD.findall(normalize_text(text)) if w not in EN_STOP][:5]
    slug = re.sub(r"[^a-z0-9_]+", "-", "-".join(words))[:48].strip("-_")
    return slug or "draft-" + hashlib.sha1(text.encode()).hexdigest()[:8]


def id_for_file(path: str | PurePath | None) -> str | None:
    """The rubric id a draft written to `path` should have: the file's stem (rubrics/lists.yaml ->
    lists), so that `grader check` finds id and file name agreeing; None without a path, or when
    the stem has no letter or digit to make an id of."""
    if path is None:
        return None
    stem = PurePath(path).stem
    slug = re.sub(r"[^a-z0-9_]+", "-", stem.lower()).strip("-_")
    return slug or None


_ZH_NUM = {"一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_EN_NUM = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def asked_count(question: str) -> int | None:
    """How many items the question asks for ("name three", "至少说出两条"), or None."""
    q = normalize_text(question)
    m = re.search(
        r"(?:at least |list |name |give |describe |include )?\b(two|three|four|five|six)\b\s+(?:\w+\s+){0,2}?"
        r"(?:ways|steps|processes|pieces|reasons|examples|methods|differences|advantages|elements|factors|items|types|things|properties)",
        q,
    )
    if m:
        return _EN_NUM[m.group(1)]
    m = re.search(r"(?:至少|列举|说出|写出|举出|给出)[^,.?]{0,4}?([两二三四五六])\s*(?:条|点|个|种|项|方面)", q)
    if m:
        return _ZH_NUM[m.group(1)]
    return None


def _rubric_data(
    question: str,
    reference: str,
    lang: str,
    rid: str,
    max_score: float,
    points: list[DraftPoint],
    terms: dict[str, list[str]],
    scoring: dict[str, Any] | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    used = json.dumps([[p.rule, p.partial] for p in points], ensure_ascii=False)
    terms = {k: v for k, v in terms.items() if f'"${k}"' in used}  # only bundles a rule still uses
    kps = []
    for p in points:
        kp: dict[str, Any] = {"id": p.id, "weight": p.weight, "statement": {lang: p.clause}, "match": p.rule}
        if p.partial:
            kp["partial"] = p.partial
            kp["partial_credit"] = PARTIAL_CREDIT
        if p.exclude:
            kp["exclude"] = p.exclude
            kp["exclude_window"] = TOPIC_WINDOW
        kps.append(kp)
    data: dict[str, Any] = {
        "id": rid,
        "question": {lang: question},
        "max_score": max_score,
        "reference_answer": {lang: reference},
        "terms": terms,
        "key_points": kps,
    }
    if scoring:
        data["scoring"] = scoring
    return data | extra


def _all(concepts: Sequence[Concept], clause: str) -> dict[str, Any]:
    # Both terms in one sentence, not too far apart: students reorder and pad a little.
    return {"all": [_concept_rule(c) for c in concepts], "window": min(max(len(normalize_text(clause)) + 20, 40), 100)}


GLOSSARY_SINGLE_ZH = 2
GLOSSARY_SINGLE_EN = 99
TOPIC_WINDOW = 6
"""How close another subject must stand before a match to void it (链表 in 链表支持随机访问)."""


def _topics(reference: str) -> list[tuple[str, GlossaryEntry]]:
    """(sentence, subject) for each Chinese sentence that opens with a glossary concept, when the
    reference compares two or more subjects (顺序表 … 。链表 …)."""
    out = []
    for sentence in re.split(r"[。；;！？!?\n]", reference):
        norm = normalize_text(sentence).strip()
        if not _CJK.search(norm):
            continue
        best = None
        for entry in glossary():
            for phrase in entry.phrases:
                pos = _occurs(norm, phrase)
                if 0 <= pos <= 2 and (best is None or len(phrase) > len(best[1])):
                    best = (entry, phrase)
        if best is not None:
            out.append((norm, best[0]))
    return out if len({e.key for _, e in out}) >= 2 else []


def _topic_exclusions(clause: str, topics: list[tuple[str, GlossaryEntry]]) -> list[str]:
    norm = normalize_text(clause)
    own = next((e for s, e in topics if norm[:8] in s), None)
    if own is None:
        return []
    mine = [normalize_text(p) for p in own.phrases]
    others = {normalize_text(p) for _, e in topics if e is not own for p in e.phrases}
    return sorted(p for p in others if not any(p in m for m in mine))


PAIR_GAP = {"zh": 16, "en": 40}
"""How far (normalised characters) a shared formula may stand after its clause's subject."""
PAIR_GAP_BEFORE = 12
"""How far a shared formula may stand before the subject ("O(1) insertion", "O(1)的插入"), with no comma between."""


def _partners(concepts: Sequence[Concept]) -> list[Concept]:
    """The subject or operation a shared formula belongs to (查找 in 查找是 O(n), 下标 in 按下标取元素是 O(1)):
    the clause's first terms, in reading order, that the question does not give away."""
    cands = [c for c in concepts if c.kind != "formula" and c.salience >= 1.0 and (c.core or c.text) not in COMMON_WORDS]
    return sorted(cands, key=lambda c: c.start)[:2]


def formula_pair_regex(formula: str, partner: Concept) -> str:
    """A regex for `formula` said of `partner` (查找是 O(n), "insertion is O(1)", "O(1) insertion"):
    the partner (any of its synonyms) then the formula in one sentence with no other big-O between,
    or the formula right before the partner with no comma between. A formula that several clauses
    share (顺序表 按下标 O(1), 链表 插入 O(1)) then earns only the clause it is said of."""
    alts = []
    for phrase in dict.fromkeys(normalize_text(a) for a in (partner.alternatives or [partner.text])):
        if not phrase:
            continue
        if _CJK.search(phrase):
            alts.append(re.escape(phrase))
        else:
            words = [re.escape(w) for w in re.split(r"[\s-]+", phrase) if w]
            alts.append(r"(?<![a-z0-9])" + r"[\s-]*".join(words) + r"[a-z]*")
    subject = "(?:" + "|".join(sorted(alts, key=len, reverse=True)) + ")"
    gap = PAIR_GAP["zh" if _CJK.search(partner.text) else "en"]
    f = formula_regex(formula)
    return rf"{subject}(?:(?!o\s*\()[^.。;!?\n]){{0,{gap}}}?{f}|{f}[^,.。;!?\n]{{0,{PAIR_GAP_BEFORE}}}?{subject}"


def _formula_pairs(f: Concept, concepts: Sequence[Concept]) -> list[Any]:
    return [{"regex": formula_pair_regex(f.text, c)} for c in _partners(concepts)]


def _shared_formulas(clause_concepts: Sequence[Sequence[Concept]]) -> frozenset[str]:
    """Formulas that more than one clause states (O(1) for 顺序表's indexing and 链表's insertion):
    no standalone rule for any of them, or one "O(1)" in an answer would earn every such point."""
    seen: dict[str, int] = {}
    for concepts in clause_concepts:
        for f in {c.text for c in concepts if c.kind == "formula"}:
            seen[f] = seen.get(f, 0) + 1
    return frozenset(f for f, n in seen.items() if n >= 2)


def _build_point(clause: str, concepts: list[Concept], pid: str, *, with_partial: bool, shared: frozenset[str] = frozenset()) -> DraftPoint:
    """A point earned by its defining idea: a formula, a specific term that carries the clause
    alone, or two of its top terms together (never two common words); a formula other clauses
    also state earns only together with its clause's subject; other specific terms earn partial
    credit (weighted scoring only)."""
    p = DraftPoint(id=pid, clause=clause, concepts=concepts)
    keen = [c for c in concepts if not _generic(c)]
    bare = [c for c in concepts if c.kind == "formula" and c.text in shared]
    singles = [c for c in concepts if _defining(c, keen) and c not in bare]
    known = any(c.entry is not None or c.kind == "formula" for c in singles)
    if known:
        # A known concept (glossary term, formula) is the idea: no literal word alone besides it.
        singles = [c for c in singles if c.entry is not None or c.kind == "formula"]
    p.rule = [_concept_rule(c) for c in singles] + [r for f in bare for r in _formula_pairs(f, concepts)]
    # Terms the question gives away pair only when the clause has too few of its own.
    own = [c for c in concepts if c.kind != "formula" and c.salience >= 1.0]
    top = (own if len(own) >= 2 else [c for c in concepts if c.kind != "formula"])[:3]
    # Only the clause's best common word may pair with a specific term: in "reduces overfitting"
    # the direction carries the claim; "overfitting ... neurons" proves nothing.
    partner = next((c for c in top if _generic(c)), None)
    for i, a in enumerate(top):
        for b in top[i + 1 :]:
            if (_generic(a) and a is not partner) or (_generic(b) and b is not partner):
                continue
            if known and (_generic(a) or _generic(b)):
                continue  # beside a known concept, only two specific terms together make another way in
            if (_generic(a) and _generic(b)) or a in singles or b in singles:
                continue  # two common words prove nothing; a pair with a term that earns alone is redundant
            rule = _all([a, b], clause)
            if rule not in p.rule:
                p.rule.append(rule)
    if not p.rule:
        # Nothing specific: the two best terms together, or the only one (never a shared formula
        # alone: "是 O(n)" is no point of its own).
        lone = [c for c in concepts if c not in bare]
        p.rule = [_all(top[:2], clause)] if len(top) >= 2 else [_concept_rule(lone[0])] if lone else []
        p.review.append("only common words here: check this point is worth a mark")
    if with_partial:
        p.partial = [_concept_rule(c) for c in keen if c not in singles and c not in bare and c.salience >= 2.0][:2]
    return p


def draft_rubric(
    question: str,
    reference: str,
    *,
    lang: str | None = None,
    rubric_id: str | None = None,
    max_score: float = 100.0,
    max_points: int = 8,
) -> str:
    """A rubric YAML draft (with `# REVIEW:` comments and `examples:` of non-answers that must
    score low) whose reference answer earns full marks.

    Raises:
        InputError: an empty question or reference.
    """
    if not question.strip() or not reference.strip():
        raise InputError("draft needs a non-empty --question and --reference")
    lang = lang or ("zh" if _CJK.search(reference) else "en")
    rid = rubric_id or _slug(question)
    clauses = split_clauses(reference, max_points=max_points)
    verdict = _verdict(clauses[0]) if len(clauses) > 1 else None
    n = asked_count(question)
    count_table = verdict is None and len(clauses) >= 2 and (n is not None or CONCAVE is not None)
    used: set[str] = set()
    points: list[DraftPoint] = []
    terms: dict[str, list[str]] = {}
    topics = _topics(reference)
    misconceptions: list[dict[str, Any]] = []
    clause_concepts = [key_concepts(c, question=question, reference=reference) for c in clauses]
    shared = _shared_formulas(clause_concepts)
    for i, clause in enumerate(clauses):
        if i == 0 and verdict is not None:
            key, _, opposite = verdict
            used.add(key)
            points.append(
                DraftPoint(
                    id=key,
                    clause=clause,
                    concepts=[],
                    rule=[{"regex": verdict_regex(key)}],
                    review=["the verdict, at the start of an answer"],
                )
            )
            misconceptions.append(
                {
                    "id": "opposite-verdict",
                    "penalty": round(VERDICT_PENALTY * max_score, 2),
                    "statement": {lang: "相反的判断" if lang == "zh" else "the opposite verdict"},
                    "correction": {lang: reference.strip()[:200]},
                    "match": [{"regex": verdict_regex(opposite)}],
                }
            )
            continue
        concepts = clause_concepts[i]
        if not concepts and len(clauses) > 1:
            continue  # nothing but function words ("在这种情况下"): no key point
        if not concepts:
            concepts = [Concept(text=_literal_prefix(normalize_text(clause)), start=0, salience=1.0)]
        p = _build_point(clause, concepts, _point_id(clause, concepts, used, i), with_partial=not count_table, shared=shared)
        if not p.rule and len(clauses) > 1:
            continue  # only a formula other clauses state, with no subject: no point of its own
        p.exclude = _topic_exclusions(clause, topics)
        for c in concepts:
            if len(c.alternatives) > 1:
                terms.setdefault(c.bundle, list(dict.fromkeys(c.alternatives)))
        points.append(p)
    _drop_non_answer_rules(question, reference, lang, points, terms)
    extra = {"misconceptions": misconceptions} if misconceptions else {}
    # Self-check: run `grader check`'s structure checks on the draft; an alternative that still
    # earns two points is dropped (its point keeps a pair of terms), then the draft is rebuilt.
    text = ""
    for attempt in range(SELF_CHECK_ROUNDS + 2):
        if verdict is not None:
            points[0].weight = round(VERDICT_SHARE * (len(points) - 1), 2)
        scoring = _scoring(points, n, verdict is not None, count_table, max_score)
        data = functools.partial(_rubric_data, question, reference, lang, rid, max_score, points, terms, scoring, extra)
        rubric = _fit_reference(data, question, reference, lang, points, terms, shared)
        examples = _examples(question, reference, lang, max_score, rubric, verdict)
        text = _emit(rubric, points, lang, scoring, examples)
        clashes = _shared_alternatives(text)
        if not clashes or attempt > SELF_CHECK_ROUNDS:
            break
        # The last round drops what still clashes without pairing anything new.
        _unshare(points, clashes, shared, last=attempt == SELF_CHECK_ROUNDS)
    return text


SELF_CHECK_ROUNDS = 3


def _scoring(points: Sequence[DraftPoint], n: int | None, has_verdict: bool, count_table: bool, max_score: float) -> dict[str, Any] | None:
    if n is not None and len(points) > n and not has_verdict:
        # "Name three ...": any n of the points earn full marks, as ASAP-style rules count them.
        return {"mode": "count", "table": [round(max_score * k / n, 4) for k in range(n + 1)]}
    if count_table and CONCAVE is not None:
        k = len(points)
        return {"mode": "count", "table": [round(max_score * (i / k) ** CONCAVE, 1) for i in range(k)] + [max_score]}
    return None


def _shared_alternatives(text: str) -> list[tuple[int, int]]:
    """(key point index, rule index) of each alternative `grader check` finds earning a second key point."""
    from .check import check_structure, parse_for_check

    out = []
    for f in check_structure(parse_for_check(text, source="<draft>")):
        m = re.fullmatch(r"key_points\[(\d+)\]\.match\[(\d+)\]", f.field or "")
        if f.code == "shared-alternative" and m:
            out.append((int(m.group(1)), int(m.group(2))))
    return out


def _unshare(points: list[DraftPoint], clashes: Sequence[tuple[int, int]], shared: frozenset[str], *, last: bool) -> None:
    """Drop each shared alternative from the later of its two points; a point left with no rule
    gets its formula paired with its subject, or two of its terms together, or (in the last
    round, or with nothing to pair) is removed."""
    by_point: dict[int, set[int]] = {}
    for i, j in clashes:
        by_point.setdefault(i, set()).add(j)
    for i in sorted(by_point, reverse=True):
        p = points[i]
        p.rule = [r for j, r in enumerate(p.rule) if j not in by_point[i]]
        if "a rule another point also has was dropped" not in p.review:
            p.review.append("a rule another point also has was dropped")
        if p.rule:
            continue
        if not last:
            formulas = [c for c in p.concepts if c.kind == "formula"]
            words = [c for c in p.concepts if c.kind != "formula"]
            p.rule = [r for f in formulas for r in _formula_pairs(f, p.concepts)]
            if not p.rule and len(words) >= 2 and not (_generic(words[0]) and _generic(words[1])):
                p.rule = [_all(words[:2], p.clause)]
        if not p.rule and len(points) > 1:
            points.pop(i)


_DONT_KNOW = {"zh": "不知道", "en": "I don't know."}
NON_ANSWER_MAX = {"don't know": 0.2, "question": 0.35, "opposite verdict": 0.5}
"""The highest score (share of max_score) a draft's non-answer examples may get."""


def _examples(question: str, reference: str, lang: str, max_score: float, rubric: Rubric, verdict: Any) -> list[dict[str, Any]]:
    """Examples for `grader check`: the reference scores high; "I don't know", the question
    repeated back and (for a verdict) the opposite verdict score low. A non-answer the draft
    scores higher fails the check: the draft is too lenient there and needs review."""
    out: list[dict[str, Any]] = [
        {"kind": "excellent", "answer": reference, "score": [round(max_score * rubric.reference_min / 100, 2), max_score]},
        {"kind": "off-topic", "answer": _DONT_KNOW[lang], "score": [0, round(max_score * NON_ANSWER_MAX["don't know"], 2)]},
        {"kind": "off-topic", "answer": question, "score": [0, round(max_score * NON_ANSWER_MAX["question"], 2)]},
    ]
    if verdict is not None:
        opposite = next(w for k, w, _ in _VERDICTS if k == verdict[2])[0]
        body = reference.strip()[len(_verdict_prefix(reference)) :]
        flipped = f"{opposite}。{body}" if lang == "zh" else f"{opposite.capitalize()}. {body}"
        out.append({"kind": "negated", "answer": flipped, "score": [0, round(max_score * NON_ANSWER_MAX["opposite verdict"], 2)]})
    return out


def _verdict_prefix(reference: str) -> str:
    m = re.match(r"\s*[^,.。，:：;；!！\n]*[,.。，:：;；!！\n]?", reference)
    return m.group() if m else ""


def _literal_prefix(text: str, size: int = 12) -> str:
    """About `size` characters of `text`, never cut right before or inside a negation (存储空间不连续
    must not become 存储空间不, nor 存储空间 that 存储空间不连续 contains)."""
    out = text[:size]
    rest = text[size:]
    m = re.match(r"[不没未非无]\S{0,3}", rest)
    if m or out.endswith(("不", "没", "未", "非", "无")):
        out += rest[: (m.end() if m else 2)]
    return out.strip()


def _drop_non_answer_rules(question: str, reference: str, lang: str, points: list[DraftPoint], terms: dict[str, list[str]]) -> None:
    """Drop the rules a non-answer (the question repeated back, "I don't know") earns; a point
    left with none is removed: restating the question is no key point."""
    non_answers = [question, _DONT_KNOW[lang]]

    def honest(rule: Any) -> bool:
        return _earns(reference, rule, terms) and not any(_earns(x, rule, terms) for x in non_answers)

    for p in list(points):
        if p.id.startswith("verdict-"):
            continue
        kept = [r for r in p.rule if not any(_earns(x, r, terms) for x in non_answers)]
        p.partial = [r for r in p.partial if not any(_earns(x, r, terms) for x in non_answers)]
        if kept == p.rule:
            continue
        if not kept:
            # The clause restates the question ("使用顺序表比链表好"): only its claim word can make it
            # a point ("单链表不可以" = the given term + 不可以); else it is no point at all.
            claim = re.search(r"不可以|不能|不行|可以|能够|不是|\b(?:cannot|can|not|no|yes)\b", normalize_text(p.clause))
            if claim and p.concepts:
                rule = {"all": [_concept_rule(p.concepts[0]), claim.group()], "window": 30}
                kept = [rule] if honest(rule) else []
        if kept:
            p.rule = kept
            p.review.append("the question's own words earned a rule; it was dropped")
        elif len(points) > 1:
            points.remove(p)


def _fit_reference(
    data: Callable[[], dict[str, Any]],
    question: str,
    reference: str,
    lang: str,
    points: list[DraftPoint],
    terms: dict[str, list[str]],
    shared: frozenset[str] = frozenset(),
) -> Rubric:
    """Simplify the rules of every point the reference does not earn, until it earns them all
    (never with a rule the question or "I don't know" earns, nor a formula other points share alone).
    `data()` gives the rubric's YAML data from `points` as they are now."""

    def build() -> Rubric:
        _dedupe(points, terms)
        return parse_rubric(yaml.safe_dump(data(), allow_unicode=True), source="<draft>")

    non_answers = [question, _DONT_KNOW[lang]]

    def honest(rule: Any) -> bool:
        return _earns(reference, rule, terms) and not any(_earns(x, rule, terms) for x in non_answers)

    for _ in range(3):
        rubric = build()
        failing = {r.id for r in grade(rubric, reference).points if r.status != "met"}
        if not failing:
            return rubric
        for p in points:
            if p.id not in failing:
                continue
            if p.exclude:
                p.exclude = []  # the reference itself names another subject nearby
                continue
            # Keep the rules the reference earns one by one (a stray negation cue or a long
            # distance can void a combination), else a pair of its terms, else one specific term,
            # else the clause's own words.
            kept = [r for r in p.rule if honest(r)]
            if not kept:
                pairs = [
                    _all([a, b], p.clause)
                    for i, a in enumerate(p.concepts)
                    for b in p.concepts[i + 1 :]
                    if not (_generic(a) and _generic(b)) and a.kind != "formula" and b.kind != "formula"
                ]
                kept = [r for r in pairs if honest(r)][:2]
            if not kept:
                kept = [
                    r for c in p.concepts if c.kind == "formula" and c.text in shared for r in _formula_pairs(c, p.concepts) if honest(r)
                ][:2]
            if not kept:
                lone = [
                    c
                    for c in p.concepts
                    if not _generic(c)
                    and not (c.kind == "formula" and c.text in shared)
                    and (c.entry is not None or c.text not in _EVERYDAY_EN)
                ]
                kept = [_concept_rule(c) for c in lone if honest(_concept_rule(c))][:1]
            if kept:
                p.rule = kept[:3]
                p.partial = [r for r in p.partial if r not in p.rule]
                note = "the reference did not earn the full rule; kept what it earns"
            else:
                p.rule = [{"regex": re.escape(_literal_prefix(normalize_text(p.clause)))}]
                p.partial = []
                note = "fell back to the reference's literal words; add paraphrases"
            if note not in p.review:
                p.review.append(note)
    return build()


def _dedupe(points: list[DraftPoint], terms: dict[str, list[str]]) -> None:
    """Keep each standalone phrase in one point's `match:` (the first): one phrase in an answer
    must not count twice, and `grader check` rejects it. A point left without a rule gets its
    two best terms together."""
    owned: set[str] = set()
    for p in points:
        keep: list[Any] = []
        for rule in p.rule:
            if isinstance(rule, str):
                phrases = {_stem(x) for x in (terms.get(rule[1:], [rule]) if rule.startswith("$") else [rule])}
            elif isinstance(rule, dict) and "regex" in rule:
                phrases = {"regex:" + rule["regex"]}
            else:
                phrases = set()
            if phrases & owned:
                continue
            owned |= phrases
            keep.append(rule)
        words = [c for c in p.concepts if c.kind != "formula"]
        if not keep and len(words) >= 2:
            keep = [_all(words[:2], p.clause)]
        if keep:
            p.rule = keep


def _stem(phrase: str) -> str:
    """The phrase as the matcher compares it, near enough: particle = particles."""
    return " ".join(re.sub(r"(?<=[a-z]{3})e?s?$", "", w) for w in normalize_text(phrase).split())


def _earns(reference: str, rule: Any, terms: dict[str, list[str]]) -> bool:
    data = {
        "id": "probe",
        "question": {"en": "probe"},
        "terms": terms,
        "key_points": [{"id": "p", "statement": {"en": "p"}, "match": [rule]}],
    }
    return grade(Rubric.model_validate(data), reference).points[0].status == "met"


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def _flow(rule: Any) -> str:
    if isinstance(rule, str):
        return _q(rule)
    if isinstance(rule, dict) and "regex" in rule:
        return "{regex: " + _q(rule["regex"]) + "}"
    if isinstance(rule, list):
        return "[" + ", ".join(_flow(r) for r in rule) + "]"
    return "{all: " + _flow(rule["all"]) + f", window: {rule['window']}}}"


def _emit(rubric: Rubric, points: list[DraftPoint], lang: str, scoring: dict[str, Any] | None, examples: list[dict[str, Any]]) -> str:
    """The draft as commented YAML."""
    q = rubric.question.get(lang)
    ref = rubric.reference_answer.get(lang) if rubric.reference_answer else ""
    out = [
        "# Drafted by `grader draft` from a reference answer. Not reviewed yet.",
        "# REVIEW: read every key point: is it one idea an expert would credit? merge, split or reweight.",
        "# REVIEW: add paraphrases students use, and misconceptions (see docs/rubric-format.md).",
        f"id: {_q(rubric.id)}",
        "question:",
        f"  {lang}: {_q(q)}",
        f"max_score: {rubric.max_score:g}",
        "reference_answer:",
        f"  {lang}: {_q(ref)}",
    ]
    if rubric.terms:
        out.append("terms:  # synonyms from the built-in glossary, formula spellings, verdict words")
        for name, phrases in rubric.terms.items():
            out.append(f"  {name}: {_flow(phrases)}")
    out.append("key_points:")
    for p, kp in zip(points, rubric.key_points, strict=True):
        rules_text = json.dumps([r if isinstance(r, str) else r.model_dump(mode="json") for r in kp.match], ensure_ascii=False)
        literal = [c.text for c in p.concepts if not c.alternatives and c.kind == "word" and _q(c.text) in rules_text]
        out.append(f"  - id: {_q(kp.id)}")
        out.append(f"    weight: {p.weight:g}")
        out.append(f"    statement: {{{lang}: {_q(p.clause)}}}")
        notes = list(p.review)
        if literal:
            notes.append(f"no glossary synonyms for {', '.join(literal)}: add the words students use")
        if any(c.negated for c in p.concepts):
            notes.append("a negated term: check that its positive form is not what students write")
        if any(isinstance(r, str) and len(r) <= 2 and not r.startswith("$") for r in kp.match):
            notes.append("a very short term earns this point: check it is not too generous")
        out.append("    match:  # any one earns the point" + (f"; REVIEW: {'; '.join(notes)}" if notes else ""))
        for rule in kp.match:
            out.append(f"      - {_flow(rule if isinstance(rule, str) else rule.model_dump(mode='json'))}")
        if kp.partial and kp.partial != kp.match:
            out.append(f"    partial:  # REVIEW: {kp.partial_credit:g} credit for a related term alone; delete if too generous")
            for rule in kp.partial:
                out.append(f"      - {_flow(rule if isinstance(rule, str) else rule.model_dump(mode='json'))}")
            out.append(f"    partial_credit: {kp.partial_credit:g}")
        if kp.exclude:
            out.append("    exclude:  # REVIEW: the other subjects compared; a match right after one of them is void")
            out.append(f"      {_flow(kp.exclude)}")
            out.append(f"    exclude_window: {kp.exclude_window}")
    if scoring:
        if len(scoring["table"]) - 1 < len(points):
            out.append(f"# REVIEW: the question asks for {len(scoring['table']) - 1} items: any that many points earn full marks.")
        else:
            out.append("# REVIEW: a generous table (N points met -> max·(N/n)^0.5), as human graders give partial answers most marks.")
        out.append(f"scoring: {{mode: count, table: {_flow_nums(scoring['table'])}}}")
    out.append("# REVIEW: misconceptions: add the wrong beliefs you see in answers, with a penalty and a correction.")
    if not rubric.misconceptions:
        out.append("misconceptions: []")
    else:
        out.append("misconceptions:")
        for m in rubric.misconceptions:
            out.append(f"  - id: {_q(m.id)}")
            out.append(f"    penalty: {m.penalty:g}")
            if m.statement is not None:
                out.append(f"    statement: {{{lang}: {_q(m.statement.get(lang))}}}")
            out.append(f"    correction: {{{lang}: {_q(m.correction.get(lang))}}}")
            out.append("    match:")
            for rule in m.match:
                out.append(f"      - {_flow(rule if isinstance(rule, str) else rule.model_dump(mode='json'))}")
    out.append("# Checked by `grader check`: the reference must score high, non-answers low. A non-answer that")
    out.append("# scores higher than its range makes the check fail: the draft is too lenient there.")
    out.append("examples:")
    for ex in examples:
        got = grade(rubric, ex["answer"]).score
        low, high = ex["score"]
        note = "" if low <= got <= high else f"  # REVIEW: scores {got:g} now: tighten the rules it earns"
        out.append(f"  - kind: {ex['kind']}{note}")
        out.append(f"    answer: {_q(ex['answer'])}")
        out.append(f"    score: {_flow_nums(ex['score'])}")
    return "\n".join(out) + "\n"


def _flow_nums(xs: Sequence[float]) -> str:
    return "[" + ", ".join(f"{x:g}" for x in xs) + "]"


def read_reference(value: str) -> str:
    """--reference: the text itself, or a file's content when it names an existing file ('-' = stdin).

    Raises:
        InputError: an unreadable file.
    """
    import sys
    from pathlib import Path

    if value == "-":
        return sys.stdin.read()
    path = Path(value)
    try:
        is_file = len(value) < 1024 and "\n" not in value and path.is_file()
    except OSError:
        is_file = False
    if is_file:
        try:
            return path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read reference file {value}: {exc}") from None
    if _looks_like_path(value):
        raise InputError(
            f"--reference {value!r} looks like a file name, but there is no such file; "
            "check the path, or pass the reference text itself (with spaces) or '-' for stdin"
        )
    return value


def _looks_like_path(value: str) -> bool:
    """One token with a path separator or a file extension (answr.txt, refs/q1.md): a mistyped
    file name, not a reference answer. "O(n)." or "LIFO" are not paths."""
    v = value.strip()
    if not v or any(ch.isspace() for ch in v) or _CJK.search(v) or len(v) > 255:
        return False
    return "/" in v or "\\" in v or re.search(r"\.[A-Za-z][A-Za-z0-9]{0,4}$", v) is not None


def judge_draft(question: str, reference: str, *, lang: str | None = None) -> str:
    """A draft with the LLM judge's proposals (points, alternatives, misconceptions), via
    `grader.judge.draft_rubric(question, reference, lang=...)` when the judge provides it.

    Raises:
        InputError: no judge in this installation, or it cannot draft.
    """
    import importlib

    try:
        judge = importlib.import_module(f"{__package__}.judge")
    except ImportError:
        raise InputError("--judge needs the LLM judge (grader/judge.py), which this installation of grader does not have") from None
    fn = getattr(judge, "draft_rubric", None)
    if fn is None:
        raise InputError("--judge: this judge cannot draft rubrics (grader.judge has no draft_rubric)")
    text: str = fn(question, reference, lang=lang)
    parse_rubric(text, source="<judge draft>")
    return text
