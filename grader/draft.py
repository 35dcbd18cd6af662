"""Rubric drafts from a reference answer: `grader draft --question TEXT --reference TEXT|FILE`.

The reference is split into clauses (one key point each, at most `max_points`); each clause's key
terms are chosen (glossary terms first, then content words or Chinese segments), glossary synonyms
become term bundles, and each point gets an ``all:`` rule over its terms. The draft is checked by
grading the reference with it: a point the reference does not earn falls back to a simpler rule.
Lines a person should look at carry ``# REVIEW:`` comments.
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
_SENTENCE = re.compile(r"(?<=[。！？；;!?\n])|(?<=\.)\s+")
_CLAUSE_ZH = re.compile(r"[，,：:、]")
_CLAUSE_EN = re.compile(r",\s+|;\s+|:\s+|\s+(?:and|which|so that|without|while|whereas|because|but)\s+", re.IGNORECASE)
_EN_WORD = re.compile(r"[a-z][a-z0-9'-]*|\d+")
_NEG_ZH = ("不支持", "不能", "不会", "不需", "不需要", "不必", "不是", "不可以", "不一定", "没有", "无法", "无需", "不")
_ZH_FUNCTION = re.compile(
    r"(?:的|了|是|在|和|与|或者|或|及|也|就|都|而|并且|并|着|地|得|这|那|个|一个|可以|需要|进行|使用|如果|但是|但|"
    r"由于|因为|所以|因此|即|则|时|对|把|将|被|为|从|到|其|该|中|上|下|之|等|很|较|更|只|仅|每|各|所有|任何|"
    r"我们|它们|它|当|所|以|于|让|使得|使|能够|能|会|要|还|又|再|后|前|情况|这样|那么|以及|可|有|进行|访问|产生|造成|容易|之间|需|要求|说明|例如|比如|可能|一定|直接|只要|即可|完成|相应|存在)"
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
MAX_TERMS = 3
# Glossary concepts too common to earn credit alone (never a partial rule on their own).
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
    """A key term of a clause: a glossary bundle or a literal phrase."""

    text: str
    """The words as they appear in the reference."""
    start: int
    entry: GlossaryEntry | None = None
    negated: bool = False

    @property
    def length(self) -> int:
        return len(self.text)


@dataclass
class DraftPoint:
    """One drafted key point."""

    id: str
    clause: str
    concepts: list[Concept]
    rule: Any = None
    partial: list[Any] = field(default_factory=list)
    review: list[str] = field(default_factory=list)


def split_clauses(reference: str, *, max_points: int = 6) -> list[str]:
    """The reference as clauses: sentences, and Chinese sentences further at commas; short
    fragments join their neighbour, and the shortest neighbours merge until `max_points` remain."""
    parts: list[str] = []
    for sentence in _SENTENCE.split(reference):
        sentence = sentence.strip(" \t\n。；;！？!?.")
        if not sentence:
            continue
        pieces = _CLAUSE_ZH.split(sentence) if _CJK.search(sentence) else _CLAUSE_EN.split(sentence)
        pieces = [re.sub(r"^(?:and|which|but|so|then|while|because)\s+", "", p.strip(), flags=re.IGNORECASE) for p in pieces]
        parts += [p for p in pieces if p]
    merged: list[str] = []
    for p in parts:
        size = len(p) if _CJK.search(p) else len(p.split()) * 2
        if merged and size < 6:
            merged[-1] = merged[-1] + ("，" if _CJK.search(p) else ", ") + p
        elif merged and not _CJK.search(p) and len(merged[-1].split()) < 3:
            merged[-1] = merged[-1] + ("，" if _CJK.search(p) else ", ") + p
        else:
            merged.append(p)
    while len(merged) > max_points:
        i = min(range(len(merged) - 1), key=lambda k: len(merged[k]) + len(merged[k + 1]))
        sep = "，" if _CJK.search(merged[i]) else "; "
        merged[i : i + 2] = [merged[i] + sep + merged[i + 1]]
    return merged


def key_concepts(clause: str, *, limit: int = MAX_TERMS) -> list[Concept]:
    """The clause's key terms: glossary terms (longest first, no overlaps), then other content."""
    norm = normalize_text(clause)
    taken = [False] * len(norm)
    found: list[Concept] = []
    candidates = sorted(((p, e) for e in glossary() for p in e.phrases), key=lambda pe: -len(pe[0]))
    for phrase, entry in candidates:
        pos = _occurs(norm, phrase)
        if pos < 0:
            continue
        span = range(pos, pos + len(normalize_text(phrase)))
        if any(taken[i] for i in span if i < len(taken)):
            continue
        for i in span:
            if i < len(taken):
                taken[i] = True
        if any(c.entry is entry for c in found):
            continue
        found.append(Concept(text=norm[span.start : span.stop], start=pos, entry=entry))
    # Content outside the glossary: Chinese segments between function words, or English content words.
    rest = "".join(ch if not taken[i] else " " for i, ch in enumerate(norm))
    extra: list[Concept] = []
    if _CJK.search(rest):
        for m in re.finditer(r"[\u4e00-\u9fffa-z0-9()]+", rest):
            for seg in _ZH_FUNCTION.split(m.group()):
                if seg and 2 <= len(seg) <= 8 and _CJK.search(seg) and seg not in _NEG_ZH:
                    extra.append(Concept(text=seg, start=m.start() + m.group().find(seg)))
    else:
        for m in _EN_WORD.finditer(rest):
            w = m.group()
            if w not in EN_STOP and (len(w) >= 4 or any(ch.isdigit() for ch in w)):
                extra.append(Concept(text=w, start=m.start()))
    extra.sort(key=lambda c: -c.length)
    # Keep one slot for a word outside the glossary: it is often what the clause is really about.
    n_gloss = min(len(found), limit - 1) if extra else min(len(found), limit)
    chosen = found[:n_gloss] + extra[: limit - n_gloss]
    # A negation right before a term belongs to it: 不支持随机访问 must not match 支持随机访问.
    for c in chosen:
        before = norm[max(0, c.start - 4) : c.start]
        for cue in _NEG_ZH:
            if before.endswith(cue) or re.search(r"\b(not|no|never|cannot|without)\s*$", before + " "):
                c.negated = True
                c.text = norm[c.start - len(cue) : c.start + len(normalize_text(c.text))] if before.endswith(cue) else c.text
                c.entry = None if before.endswith(cue) else c.entry
                break
    chosen.sort(key=lambda c: c.start)
    return chosen


def _concept_rule(c: Concept) -> str | list[str]:
    if c.entry is not None:
        return f"${c.entry.key}"
    return c.text


def _point_id(clause: str, concepts: Sequence[Concept], used: set[str], index: int) -> str:
    words = [c.entry.key for c in concepts if c.entry] + [w for c in concepts if not c.entry for w in _EN_WORD.findall(c.text)]
    base = "-".join(words[:3])[:40].strip("-") or f"point-{index + 1}"
    pid, n = base, 2
    while pid in used:
        pid, n = f"{base}-{n}", n + 1
    used.add(pid)
    return pid


def _slug(text: str) -> str:
    words = [w for w in _EN_WORD.findall(normalize_text(text)) if w not in EN_STOP][:5]
    return "-".join(words)[:48].strip("-") or "draft-" + hashlib.sha1(text.encode()).hexdigest()[:8]


def _rubric_data(
    question: str, reference: str, lang: str, rid: str, max_score: float, points: list[DraftPoint], terms: dict[str, list[str]]
) -> dict[str, Any]:
    used = json.dumps([[p.rule, p.partial] for p in points], ensure_ascii=False)
    terms = {k: v for k, v in terms.items() if f'"${k}"' in used}  # only bundles a rule still uses
    kps = []
    for p in points:
        kp: dict[str, Any] = {"id": p.id, "statement": {lang: p.clause}, "match": [p.rule]}
        if p.partial:
            kp["partial"] = p.partial
        kps.append(kp)
    return {
        "id": rid,
        "question": {lang: question},
        "max_score": max_score,
        "reference_answer": {lang: reference},
        "terms": terms,
        "key_points": kps,
    }


def draft_rubric(
    question: str,
    reference: str,
    *,
    lang: str | None = None,
    rubric_id: str | None = None,
    max_score: float = 100.0,
    max_points: int = 6,
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
    seen_terms: set[str] = set()
    for i, clause in enumerate(split_clauses(reference, max_points=max_points)):
        concepts = [c for c in key_concepts(clause) if normalize_text(c.text) not in seen_terms or c.entry is not None]
        if not concepts:
            concepts = [Concept(text=normalize_text(clause)[:30], start=0)]
        p = DraftPoint(id=_point_id(clause, concepts, used, i), clause=clause, concepts=concepts)
        rules = [_concept_rule(c) for c in concepts]
        if len(rules) >= 2:
            # Students reorder and pad: allow twice the clause's length between the terms.
            span = max(2 * len(normalize_text(clause)) + 10, 60)
            p.rule = {"all": rules, "window": min(span, 200)}
            specific = [c for c in concepts if not (c.entry and c.entry.key in GENERIC)]
            if len(specific) >= 2:
                # Half credit for the clause's two most specific terms together.
                p.partial = [{"all": [_concept_rule(c) for c in sorted(specific, key=lambda c: -c.length)[:2]], "window": p.rule["window"]}]
                if len(specific) == len(concepts) == 2:
                    p.partial = [_concept_rule(c) for c in specific]
            elif specific:
                p.partial = [_concept_rule(specific[0])]
        else:
            p.rule = rules[0]
        seen_terms |= {normalize_text(c.text) for c in concepts if c.entry is None}
        points.append(p)
    terms = {c.entry.key: list(c.entry.phrases) for p in points for c in p.concepts if c.entry is not None}
    rubric = _fit_reference(question, reference, lang, rid, max_score, points, terms)
    return _emit(rubric, points, lang)


def _fit_reference(
    question: str, reference: str, lang: str, rid: str, max_score: float, points: list[DraftPoint], terms: dict[str, list[str]]
) -> Rubric:
    """Simplify the rule of every point the reference does not earn, until it earns them all."""
    for _ in range(4):
        rubric = parse_rubric(
            yaml.safe_dump(_rubric_data(question, reference, lang, rid, max_score, points, terms), allow_unicode=True), source="<draft>"
        )
        result = grade(rubric, reference)
        failing = [r.id for r in result.points if r.status != "met"]
        if not failing:
            return rubric
        for p in points:
            if p.id not in failing:
                continue
            # Keep the concepts the reference earns one by one (a stray negation cue or a long
            # distance can void the combination), else fall back to the clause's own words.
            alone = [c for c in p.concepts if _earns(reference, _concept_rule(c), terms)]
            p.partial = []
            if len(alone) >= 2 and len(alone) < len(p.concepts):
                p.rule = {"all": [_concept_rule(c) for c in alone], "window": 200}
                p.review.append("the reference did not earn the full rule; kept the terms it earns")
            elif len(alone) >= 1 and len(alone) < len(p.concepts):
                p.rule = _concept_rule(max(alone, key=lambda c: c.length))
                p.review.append("the reference did not earn the full rule; kept one term")
            else:
                literal = normalize_text(p.clause)
                p.rule = {"regex": re.escape(literal[:40])}
                if not _earns(reference, p.rule, terms):
                    p.rule = {"regex": re.escape(literal[:12])}
                note = "fell back to the reference's literal words; add paraphrases"
                if note not in p.review:
                    p.review.append(note)
    return parse_rubric(
        yaml.safe_dump(_rubric_data(question, reference, lang, rid, max_score, points, terms), allow_unicode=True), source="<draft>"
    )


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


def _emit(rubric: Rubric, points: list[DraftPoint], lang: str) -> str:
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
        out.append("terms:  # synonyms from the built-in glossary")
        for name, phrases in rubric.terms.items():
            out.append(f"  {name}: {_flow(phrases)}")
    out.append("key_points:")
    for p, kp in zip(points, rubric.key_points, strict=True):
        literal = [c.text for c in p.concepts if c.entry is None]
        out.append(f"  - id: {_q(kp.id)}")
        out.append("    weight: 1")
        out.append(f"    statement: {{{lang}: {_q(p.clause)}}}")
        notes = list(p.review)
        if literal:
            notes.append(f"no glossary synonyms for {', '.join(literal)}: add the words students use")
        if any(c.negated for c in p.concepts):
            notes.append("a negated term: check that its positive form is not what students write")
        out.append("    match:" + (f"  # REVIEW: {'; '.join(notes)}" if notes else ""))
        for rule in kp.match:
            out.append(f"      - {_flow(rule if isinstance(rule, str) else rule.model_dump(mode='json'))}")
        if kp.partial and kp.partial != kp.match:
            out.append("    partial:  # REVIEW: half credit for the main term alone; delete if too generous")
            for rule in kp.partial:
                out.append(f"      - {_flow(rule if isinstance(rule, str) else rule.model_dump(mode='json'))}")
    out.append("# REVIEW: misconceptions: add the wrong beliefs you see in answers, with a penalty and a correction.")
    out.append("misconceptions: []")
    return "\n".join(out) + "\n"


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
