"""Rubric drafts from a reference answer: `grader draft --question TEXT --reference TEXT|FILE`.

The reference is split into small clauses (list items, sentences, and Chinese sentences at
commas), one key point each. Each clause's key terms are ranked by salience: glossary concepts,
formulas and content words score high, and words the question already uses score low (repeating
the question proves nothing). A point is earned by its most salient term (or its two best terms
near each other) and half-earned by any other salient term, so paraphrasing answers that name the
right concepts get most of the marks, as human graders give them. A leading verdict (错误, "No")
becomes its own heavy point, and "name three ..." questions get ASAP-style count scoring. The
draft is checked by grading the reference with it: a point the reference does not earn falls back
to a simpler rule. Lines a person should look at carry ``# REVIEW:`` comments.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
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
_CLAUSE_EN = re.compile(r";\s+|:\s+")
_CLAUSE_EN_FINE = re.compile(r",\s+|;\s+|:\s+|\s+(?:and|which|so that|without|while|whereas|because|but)\s+", re.IGNORECASE)
_EN_WORD = re.compile(r"[a-z][a-z0-9'-]*|\d+")
# A formula or symbolic answer: O(n), 2^(n-1), n/2, (2n+1)/3, a1=3n.
_FORMULA = re.compile(r"[a-z0-9(][a-z0-9()+\-*/^=.]*[()+\-*/^=][a-z0-9()+\-*/^=.]*[a-z0-9)]|o\([a-z0-9^ ]+\)")
_NEG_ZH = ("不支持", "不能", "不会", "不需", "不需要", "不必", "不是", "不可以", "不一定", "没有", "无法", "无需", "不")
_ZH_FUNCTION = re.compile(
    r"(?:的|了|是|在|和|与|或者|或|及|也|就|都|而|并且|并|着|地|得|这|那|个|一个|可以|需要|进行|使用|如果|但是|但|"
    r"由于|因为|所以|因此|即|则|时|对|把|将|被|为|从|到|其|该|中|上|下|之|等|很|较|更|只|仅|每|各|所有|任何|"
    r"我们|它们|它|当|所|以|于|让|使得|使|能够|能|会|要|还|又|再|后|前|情况|这样|那么|以及|可|有|进行|访问|产生|造成|容易|之间|需|要求|说明|例如|比如|可能|一定|直接|只要|即可|完成|相应|存在|"
    r"假设|举个例子|我们注意到|注意到|确实|这种|一种|某些|某个|一些|如下|过程中|过程|方面|方式|用于|通过|比较|非常|十分|"
    r"建议|采用|应该|应|宜|首先|其次|然后|最后|此外|另外|同时|总之|也就是|就是|称为|叫做|所示|分别)"
)
# A verdict that opens the reference ("错误。", "No,", "单链表不可以"): its own point, the
# synonyms and opposite forms students write.
_VERDICTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("verdict-false", ("错误", "错", "不正确", "不对", "false", "incorrect", "wrong", "×")),
    ("verdict-true", ("正确", "对", "true", "correct", "√")),
    ("verdict-no", ("不可以", "不能", "不行", "否", "不是", "no", "cannot", "can't")),
    ("verdict-yes", ("可以", "能", "是", "yes", "can")),
)
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
# Words too vague to prove knowledge in an English clause (kept out of the shared EN_STOP list).
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
MAX_TERMS = 4
# Glossary concepts too common to earn credit alone (never a rule on their own).
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
        "contiguous",
    }
)
PARTIAL_CREDIT = 0.5
# The reference's verdict is worth as much as all its explanation points together: a wrong
# verdict is what human graders punish most.
VERDICT_SHARE = 1.0
CONCAVE: float | None = 0.5
"""Without a verdict or an asked count: count scoring with table[k] = max * (k/n)**CONCAVE, so a
partial answer gets most of the marks, as human graders give them (half the points: 71 %)."""
MERGE_PARTIAL = True
"""With that table, a point's related terms earn it too (count scoring has no partial credit)."""
STRONG = 2.0
"""Salience at which one term alone earns its point."""
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
    review: list[str] = field(default_factory=list)
    weight: float = 1.0


def _pieces(reference: str) -> list[str]:
    text = _LIST_MARK.sub("\n", reference)
    parts: list[str] = []
    sentences = [s.strip(" \t\n。；;！？!?.,，") for s in _SENTENCE.split(text)]
    sentences = [s for s in sentences if s]
    for sentence in sentences:
        if _CJK.search(sentence):
            pieces = _CLAUSE_ZH.split(sentence)
        else:
            # English sentences are points of their own; a one-sentence reference splits at its clauses.
            pieces = _CLAUSE_EN.split(sentence) if len(sentences) > 1 else _CLAUSE_EN_FINE.split(sentence)
        parts += [p.strip(" \t,，") for p in pieces if p.strip(" \t,，")]
    return parts


def _size(p: str) -> int:
    return len(normalize_text(p)) if _CJK.search(p) else 2 * len(p.split())


def split_clauses(reference: str, *, max_points: int = 8) -> list[str]:
    """The reference as clauses: list items, sentences, and Chinese sentences further at commas;
    short fragments join their neighbour (a leading verdict such as 错误 stays alone), and the
    shortest neighbours merge until `max_points` remain."""
    merged: list[str] = []
    for p in _pieces(reference):
        joiner = "，" if _CJK.search(p) else ", "
        if merged and _size(p) < 6 and not (len(merged) == 1 and _verdict(merged[0]) is not None):
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


def _verdict(clause: str) -> tuple[str, tuple[str, ...]] | None:
    """The verdict a clause opens with, when it is little more than a verdict."""
    norm = normalize_text(clause)
    for key, words in _VERDICTS:
        for w in words:
            if norm == w or (len(w) > 1 and (norm.startswith(w + ",") or norm.startswith(w + " ")) and len(norm) <= len(w) + 1):
                return key, words
    return None


def _formula_spellings(f: str) -> list[str]:
    """Other ways students write a formula: 2^(n-1) as 2的n-1次方, 2**(n-1) or pow(2,n-1)."""
    out = [f]
    m = re.fullmatch(r"(\w+)\^\(([^()]+)\)", f)
    if m:
        base, exp = m.groups()
        out += [f"{base}的{exp}次方", f"{base}**({exp})", f"pow({base},{exp})"]
    m = re.fullmatch(r"(\w+)\^(\w+)", f)
    if m:
        out += [f"{m.group(1)}的{m.group(2)}次方"]
    return out


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
        if len(f) >= 3 and any(ch.isdigit() or ch in "n" for ch in f) and take(m.start(), m.start() + len(f)):
            found.append(Concept(text=f, start=m.start(), kind="formula", alternatives=_formula_spellings(f)))
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
                if seg and 2 <= len(seg) <= 8 and seg not in _NEG_ZH and at >= 0:
                    found.append(Concept(text=seg, start=at))
        elif w not in EN_STOP and w not in _VAGUE_EN and (len(w) >= 4 or any(ch.isdigit() for ch in w)) and not w.isdigit():
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
    chosen = [c for c in found if c.salience > 0][:limit]
    return chosen


def _salience(c: Concept, qnorm: str, rnorm: str) -> float:
    if c.kind == "formula":
        s = 4.0 if len(c.text) >= 4 else 2.0
    elif c.entry is not None:
        s = 1.0 if c.entry.key in GENERIC else 3.0
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


def _concept_rule(c: Concept) -> str:
    return f"${c.bundle}" if len(c.alternatives) > 1 else c.text


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
    words = [w for w in _EN_WORD.findall(normalize_text(text)) if w not in EN_STOP][:5]
    return "-".join(words)[:48].strip("-") or "draft-" + hashlib.sha1(text.encode()).hexdigest()[:8]


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
) -> dict[str, Any]:
    used = json.dumps([[p.rule, p.partial] for p in points], ensure_ascii=False)
    terms = {k: v for k, v in terms.items() if f'"${k}"' in used}  # only bundles a rule still uses
    kps = []
    for p in points:
        kp: dict[str, Any] = {"id": p.id, "weight": p.weight, "statement": {lang: p.clause}, "match": p.rule}
        if p.partial:
            kp["partial"] = p.partial
            kp["partial_credit"] = PARTIAL_CREDIT
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
    return data


def _all(concepts: Sequence[Concept], clause: str) -> dict[str, Any]:
    # Students reorder and pad: allow a wide window between the terms.
    return {"all": [_concept_rule(c) for c in concepts], "window": min(max(2 * len(normalize_text(clause)) + 20, 80), 200)}


def _build_point(clause: str, concepts: list[Concept], pid: str) -> DraftPoint:
    p = DraftPoint(id=pid, clause=clause, concepts=concepts)
    strong = [c for c in concepts if c.salience >= STRONG]
    rest = [c for c in concepts if c not in strong[:2] and c.salience >= 1.0]
    if strong:
        # The most salient term earns the point alone; two salient terms together do too.
        p.rule = [_concept_rule(c) for c in strong[:2]]
        if len(concepts) >= 2 and concepts[1] not in strong[:2]:
            p.rule.append(_all(concepts[:2], clause))
    elif len(concepts) >= 2:
        p.rule = [_all(concepts[:2], clause)]
    else:
        p.rule = [_concept_rule(concepts[0])]
    p.partial = [_concept_rule(c) for c in rest if _concept_rule(c) not in p.rule][:3]
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
    """A rubric YAML draft (with `# REVIEW:` comments) whose reference answer earns full marks.

    Raises:
        InputError: an empty question or reference.
    """
    if not question.strip() or not reference.strip():
        raise InputError("draft needs a non-empty --question and --reference")
    lang = lang or ("zh" if _CJK.search(reference) else "en")
    rid = rubric_id or _slug(question)
    used: set[str] = set()
    points: list[DraftPoint] = []
    terms: dict[str, list[str]] = {}
    verdict_points = 0
    for i, clause in enumerate(split_clauses(reference, max_points=max_points)):
        verdict = _verdict(clause) if i == 0 else None
        if verdict is not None:
            key, words = verdict
            terms[key] = list(words)
            used.add(key)
            points.append(DraftPoint(id=key, clause=clause, concepts=[], rule=[f"${key}"], review=["the verdict: check its synonyms"]))
            verdict_points = 1
            continue
        concepts = key_concepts(clause, question=question, reference=reference)
        if not concepts:
            concepts = [Concept(text=normalize_text(clause)[:30], start=0, salience=1.0)]
        p = _build_point(clause, concepts, _point_id(clause, concepts, used, i))
        for c in concepts:
            if len(c.alternatives) > 1:
                terms.setdefault(c.bundle, list(dict.fromkeys(c.alternatives)))
        points.append(p)
    if verdict_points and len(points) > 1:
        points[0].weight = round(VERDICT_SHARE * (len(points) - 1), 2)
    n = asked_count(question)
    scoring = None
    if n is not None and len(points) > n and not verdict_points:
        # "Name three ...": any n of the points earn full marks, as ASAP-style rules count them.
        scoring = {"mode": "count", "table": [round(max_score * k / n, 4) for k in range(n + 1)]}
    if scoring is None and CONCAVE is not None and not verdict_points and len(points) >= 2:
        k = len(points)
        scoring = {"mode": "count", "table": [round(max_score * (i / k) ** CONCAVE, 1) for i in range(k)] + [max_score]}
        if MERGE_PARTIAL:
            for p in points:
                p.rule = p.rule + [r for r in p.partial if r not in p.rule]
                p.partial = []
    rubric = _fit_reference(question, reference, lang, rid, max_score, points, terms, scoring)
    return _emit(rubric, points, lang, scoring)


def _fit_reference(
    question: str,
    reference: str,
    lang: str,
    rid: str,
    max_score: float,
    points: list[DraftPoint],
    terms: dict[str, list[str]],
    scoring: dict[str, Any] | None,
) -> Rubric:
    """Simplify the rules of every point the reference does not earn, until it earns them all."""

    def build() -> Rubric:
        _dedupe(points, terms)
        data = _rubric_data(question, reference, lang, rid, max_score, points, terms, scoring)
        return parse_rubric(yaml.safe_dump(data, allow_unicode=True), source="<draft>")

    for _ in range(3):
        rubric = build()
        failing = {r.id for r in grade(rubric, reference).points if r.status != "met"}
        if not failing:
            return rubric
        for p in points:
            if p.id not in failing:
                continue
            # Keep the rules and terms the reference earns one by one (a stray negation cue or a
            # long distance can void a combination), else fall back to the clause's own words.
            kept = [r for r in p.rule if _earns(reference, r, terms)]
            kept += [_concept_rule(c) for c in p.concepts if _concept_rule(c) not in kept and _earns(reference, _concept_rule(c), terms)]
            if kept:
                p.rule = kept[:3]
                p.partial = [r for r in p.partial if r not in p.rule]
                note = "the reference did not earn the full rule; kept the terms it earns"
            else:
                literal = normalize_text(p.clause)
                p.rule = [{"regex": re.escape(literal[:12])}]
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
                phrases = {normalize_text(x) for x in (terms.get(rule[1:], [rule]) if rule.startswith("$") else [rule])}
                if phrases & owned:
                    continue
                owned |= phrases
            keep.append(rule)
        if not keep and len(p.concepts) >= 2:
            keep = [_all(p.concepts[:2], p.clause)]
        if keep:
            p.rule = keep


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


def _emit(rubric: Rubric, points: list[DraftPoint], lang: str, scoring: dict[str, Any] | None) -> str:
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
        literal = [c.text for c in p.concepts if not c.alternatives and c.salience >= 1.5]
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
    if scoring:
        if len(scoring["table"]) - 1 < len(points):
            out.append(f"# REVIEW: the question asks for {len(scoring['table']) - 1} items: any that many points earn full marks.")
        else:
            out.append("# REVIEW: a generous table (N points met -> max·(N/n)^0.5), as human graders give partial answers most marks.")
        out.append(f"scoring: {{mode: count, table: {_flow_nums(scoring['table'])}}}")
    out.append("# REVIEW: misconceptions: add the wrong beliefs you see in answers, with a penalty and a correction.")
    out.append("misconceptions: []")
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
    return value


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
