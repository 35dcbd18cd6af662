"""The rubric format: strict pydantic models, loaded from YAML with file:line errors.

A rubric is one question with weighted key points and misconceptions. Each point
carries *match rules* that the offline matcher (`grader.matcher`) compiles:

- a plain string is an alternative phrase ("inverted dropout", "随机失活");
- ``$name`` stands for a term bundle from ``terms:`` (zh and en synonyms together);
- ``{all: [...], window: N}`` needs every concept near each other (within N chars);
- ``{regex: "..."}`` is the escape hatch, run on the normalised text.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, ValidationError, field_validator, model_validator

from .errors import RubricError, RubricErrors

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
SLUG = r"^[a-z0-9][a-z0-9_-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LocalText(_Strict):
    """Text in one or both languages. Both are optional, but at least one is required."""

    zh: str | None = None
    """Chinese text."""
    en: str | None = None
    """English text."""

    @model_validator(mode="after")
    def _one_language(self) -> LocalText:
        if not (self.zh or self.en):
            raise ValueError("needs text in at least one language (zh or en)")
        return self

    def get(self, lang: str) -> str:
        """The text in `lang`, falling back to the other language."""
        if lang == "zh":
            return self.zh or self.en or ""
        return self.en or self.zh or ""

    def languages(self) -> set[str]:
        """The languages this text is given in."""
        return {lang for lang in LANGS if getattr(self, lang)}


def _coerce_text(value: Any) -> Any:
    # A bare string is accepted as the text for every language the rubric uses;
    # `grader check` flags it when the question declares two languages.
    if isinstance(value, str):
        return {"en": value} if value.isascii() else {"zh": value}
    return value


Concept = str | list[str]


class AllOf(_Strict):
    """Every concept must appear, all within `window` characters of each other."""

    all: Annotated[list[Concept], Field(min_length=2)]
    """The concepts; each is a phrase, a ``$term`` or a list of alternatives."""
    window: Annotated[int, Field(gt=0, le=1000)] = 60
    """The largest span, in normalised characters, that may hold all concepts."""


class RegexRule(_Strict):
    """A regular expression run on the normalised (lower-case, simplified) text."""

    regex: str
    """The pattern (Python `re` syntax)."""

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from exc
        return v


def _rule_kind(value: Any) -> str:
    if isinstance(value, str):
        return "rule:phrase"
    if isinstance(value, dict) and "regex" in value:
        return "rule:regex"
    if isinstance(value, dict | AllOf):
        return "rule:all"
    return "rule:regex" if isinstance(value, RegexRule) else "rule:phrase"


# A rule is a phrase, {all: …} or {regex: …}; the discriminator picks the member from the
# keys, so an error is reported against the member the author meant, not all three.
Rule = Annotated[
    Annotated[str, Tag("rule:phrase")] | Annotated[AllOf, Tag("rule:all")] | Annotated[RegexRule, Tag("rule:regex")],
    Discriminator(_rule_kind),
]


class _Matchable(_Strict):
    match: list[Rule] = []
    """Rules, any of which earns the point: phrases, ``$terms``, ``{all: ...}`` or ``{regex: ...}``."""
    exclude: list[str] = []
    """Phrases that void a match when they appear within `exclude_window` characters of it."""
    exclude_window: Annotated[int, Field(ge=0, le=1000)] = 15
    """How near (in normalised characters) an exclusion must be to void a match."""
    fuzzy: bool = True
    """Typo tolerance for Latin words of 5+ letters (never for short tokens like "L1")."""
    ignore_negation: bool = False
    """Count matches even when negated: for "what is missing?" questions, where "they don't say
    how much vinegar" names the element rather than denying it."""


class KeyPoint(_Matchable):
    """One piece of knowledge a full answer contains."""

    id: Annotated[str, Field(pattern=SLUG)]
    """Slug, unique within the rubric."""
    weight: Annotated[float, Field(gt=0)] = 1.0
    """Relative weight; the score is max_score × (Σ weight·credit / Σ weight)."""
    statement: LocalText
    """What the point says; shown when it is missing (after the hint, in practice)."""
    hint: LocalText | None = None
    """A nudge that teaches without giving the point away."""
    partial: list[Rule] = []
    """Rules that earn `partial_credit` when no full rule matched."""
    partial_credit: Annotated[float, Field(gt=0, lt=1)] = 0.5
    """Credit for a partial match, in (0, 1)."""

    _coerce = field_validator("statement", "hint", mode="before")(_coerce_text)


class Misconception(_Matchable):
    """A wrong belief; stating it costs `penalty` points."""

    id: Annotated[str, Field(pattern=SLUG)]
    """Slug, unique within the rubric."""
    penalty: Annotated[float, Field(ge=0)] = 10.0
    """Points subtracted (in score units) when the misconception appears."""
    statement: LocalText | None = None
    """The wrong belief, in a few words."""
    correction: LocalText
    """The correct knowledge, shown to the writer."""

    _coerce = field_validator("statement", "correction", mode="before")(_coerce_text)


class WeightedScoring(_Strict):
    """Score = max_score × met weight share − penalties, clamped to [0, max_score]."""

    mode: Literal["weighted"] = "weighted"
    """Weighted scoring (the default)."""


class CountScoring(_Strict):
    """ASAP-style: N key points met maps to ``table[N]`` (the last entry for N beyond it)."""

    mode: Literal["count"]
    """Count scoring."""
    table: Annotated[list[float], Field(min_length=2)]
    """Score for 0, 1, 2, … points met; must not decrease."""

    @field_validator("table")
    @classmethod
    def _monotone(cls, v: list[float]) -> list[float]:
        if any(b < a for a, b in itertools.pairwise(v)):
            raise ValueError("must not decrease")
        return v


class Example(_Strict):
    """An answer with the score range an expert would give it."""

    answer: str
    """The answer text, as a candidate would write it."""
    score: Annotated[list[float], Field(min_length=2, max_length=2)]
    """Expected score range [low, high], in score units (0..max_score)."""
    kind: str | None = None
    """What the example exercises: excellent, partial, negated, injection, …"""
    met: list[str] = []
    """Key point ids that must be met."""
    not_met: list[str] = []
    """Key point ids that must not be met."""
    misconceptions: list[str] | None = None
    """Misconception ids that must be flagged (exactly these, when given)."""

    @field_validator("score")
    @classmethod
    def _ordered(cls, v: list[float]) -> list[float]:
        if v[0] > v[1]:
            raise ValueError("low must be <= high")
        return v


def _scoring_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "scoring:count" if value.get("mode") == "count" else "scoring:weighted"
    return "scoring:count" if isinstance(value, CountScoring) else "scoring:weighted"


class Rubric(_Strict):
    """One question, its key points, misconceptions and examples."""

    id: Annotated[str, Field(pattern=SLUG)]
    """Slug, unique within a bank; the file name without `.yaml` by convention."""
    question: LocalText
    """The question, in zh and/or en."""
    tags: list[str] = []
    """Topic tags, used by `grader practice --tag`."""
    max_score: Annotated[float, Field(gt=0)] = 100.0
    """The score of a perfect answer."""
    reference_answer: LocalText | None = None
    """A model answer; `grader check` requires it to score at least `reference_min` percent."""
    reference_min: Annotated[float, Field(ge=0, le=100)] = 90.0
    """Minimum percent the reference answer must score."""
    terms: dict[str, Annotated[list[str], Field(min_length=1)]] = {}
    """Term bundles, used in rules as ``$name``: zh and en synonyms of one concept."""
    key_points: Annotated[list[KeyPoint], Field(min_length=1)]
    """What a full answer covers."""
    misconceptions: list[Misconception] = []
    """Wrong beliefs that cost points."""
    scoring: Annotated[
        Annotated[WeightedScoring, Tag("scoring:weighted")] | Annotated[CountScoring, Tag("scoring:count")],
        Discriminator(_scoring_kind),
    ] = WeightedScoring()
    """How point verdicts become a score."""
    examples: list[Example] = []
    """Answers with expected score ranges (used by tests and `grader check`)."""
    source: str | None = Field(default=None, exclude=True)
    """The file the rubric came from (set by the loader)."""
    _version: str | None = PrivateAttr(default=None)
    _compiled: Any = PrivateAttr(default=None)

    _coerce = field_validator("question", "reference_answer", mode="before")(_coerce_text)

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        seen: set[str] = set()
        for kind, items in (("key_points", self.key_points), ("misconceptions", self.misconceptions)):
            for item in items:
                if item.id in seen:
                    raise ValueError(f"duplicate id {item.id!r} in {kind}")
                seen.add(item.id)
        known = set(self.terms)
        for ref in _term_refs(self):
            if ref not in known:
                raise ValueError(f"unknown term ${ref} (define it under terms:)")
        if isinstance(self.scoring, CountScoring) and self.scoring.table[-1] != self.max_score:
            raise ValueError(f"scoring.table must end at max_score ({self.max_score:g})")
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Rubric:
        """A copy; the compiled rules and version hash are recomputed for it, never shared."""
        copy = super().model_copy(update=update, deep=deep)
        copy._version = None
        copy._compiled = None
        return copy

    @property
    def languages(self) -> set[str]:
        """The languages the question is written in."""
        return self.question.languages()

    @property
    def version(self) -> str:
        """A short hash of the rubric's content; changes whenever grading could."""
        if self._version is None:
            payload = json.dumps(self.model_dump(mode="json", exclude={"examples"}), sort_keys=True, ensure_ascii=False)
            self._version = hashlib.sha256(payload.encode()).hexdigest()[:12]
        return self._version

    def point(self, point_id: str) -> KeyPoint:
        """The key point with this id (KeyError if none)."""
        for kp in self.key_points:
            if kp.id == point_id:
                return kp
        raise KeyError(point_id)


def _rule_strings(rules: list[Rule]) -> list[str]:
    out: list[str] = []
    for rule in rules:
        if isinstance(rule, str):
            out.append(rule)
        elif isinstance(rule, AllOf):
            for concept in rule.all:
                out.extend([concept] if isinstance(concept, str) else concept)
    return out


def _term_refs(rubric: Rubric) -> list[str]:
    refs: list[str] = []
    for item in [*rubric.key_points, *rubric.misconceptions]:
        strings = _rule_strings(item.match) + item.exclude
        if isinstance(item, KeyPoint):
            strings += _rule_strings(item.partial)
        refs += [s[1:] for s in strings if s.startswith("$")]
    for bundle in rubric.terms.values():
        refs += [s[1:] for s in bundle if s.startswith("$")]
    return refs


# --------------------------------------------------------------------------- loading


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BaseLoader):  # type: ignore[misc]  # C or Python loader, chosen at import
    """A safe loader that rejects duplicate keys (YAML silently keeps the last one)."""


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(None, None, "mapping keys must be plain words", key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return dict(loader.construct_mapping(node, deep=True))


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

# YAML 1.1 reads on/off/yes/no as booleans, so a phrase list like [on, off] would silently
# become [True, False]. Rubrics follow YAML 1.2 here: only true/false are booleans.
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _LineLoader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"))
    )


def _aliased_node(root: yaml.Node) -> yaml.Node | None:
    """The first node reached twice (through a YAML alias), or None. Linear in the node count."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return node
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack += [k, v]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return None


def _line_index(
    node: yaml.Node, path: tuple[Any, ...] = (), out: dict[tuple[Any, ...], int] | None = None, seen: set[int] | None = None
) -> dict[tuple[Any, ...], int]:
    """Map each path (keys and list indices) to the 1-based line where it starts (aliases visited once)."""
    out = {} if out is None else out
    seen = set() if seen is None else seen
    if id(node) in seen:
        return out
    seen.add(id(node))
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = (*path, key_node.value)
            out[sub] = key_node.start_mark.line + 1
            _line_index(value_node, sub, out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, i)
            out[sub] = item.start_mark.line + 1
            _line_index(item, sub, out, seen)
    return out


def _field_path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


_MESSAGES = [
    (re.compile(r"^Input should be "), "must be "),
    (re.compile(r"^Extra inputs are not permitted$"), "unknown key"),
    (re.compile(r"^Field required$"), "missing required field"),
    (re.compile(r"^Value error, "), ""),
    (re.compile(r"^String should match pattern '\^\[a-z0-9\]\[a-z0-9_-\]\*\$'$"), "must be a slug (lower-case letters, digits, - and _)"),
    (re.compile(r"^String should "), "must "),
    (re.compile(r"^List should "), "must "),
]


def _friendly(msg: str) -> str:
    for pattern, repl in _MESSAGES:
        msg = pattern.sub(repl, msg)
    return msg.replace("greater than 0", "> 0").replace("greater than or equal to", ">=")


# Union-member tags pydantic puts into error locations ("str", "AllOf", "rule:all", "function-after[...]").
_UNION_TAGS = frozenset({"str", "AllOf", "RegexRule", "WeightedScoring", "CountScoring", "LocalText", "list[str]"})


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in _UNION_TAGS or ":" in part or part.startswith(("function-", "tagged-union")))


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(p for p in loc if not _is_union_tag(p))


def parse_rubric(text: str, *, source: str = "<string>") -> Rubric:
    """Parse one rubric from YAML text.

    Raises:
        RubricErrors: every problem found, each naming `source`, its line and field.
    """
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise RubricErrors([RubricError(f"invalid YAML: {problem}", file=source, line=line)]) from None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        raise RubricErrors([RubricError("a rubric must be a YAML mapping (id:, question:, key_points:, …)", file=source, line=1)])
    aliased = _aliased_node(node)
    if aliased is not None:
        line = aliased.start_mark.line + 1
        raise RubricErrors(
            [RubricError("invalid YAML: anchors and aliases (&name, *name) are not allowed in rubrics", file=source, line=line)]
        )
    lines = _line_index(node)
    semantic = _semantic_errors(data)
    if semantic:
        raise RubricErrors(
            [RubricError(msg, file=source, line=_nearest_line(lines, loc), field=_field_path(loc) or None) for loc, msg in semantic]
        )
    try:
        rubric = Rubric.model_validate({**data, "source": source})
    except ValidationError as exc:
        errors = []
        raw = exc.errors()
        for err in _dedupe_union_errors(raw):
            loc = _clean_loc(tuple(err["loc"]))
            line = _nearest_line(lines, loc)
            msg = _friendly(err["msg"])
            if err["type"] == "extra_forbidden" and loc:
                msg = f"unknown key {loc[-1]!r}"
            errors.append(RubricError(msg, file=source, line=line, field=_field_path(loc) or None))
        raise RubricErrors(errors) from None
    return rubric


def _semantic_errors(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-field problems, found on the raw YAML so each can name its line and field.

    The model validator checks the same things for rubrics built in Python; here they get
    a precise location (`key_points[2].id`, `key_points[0].match[1]`, `terms.x[0]`).
    """
    out: list[tuple[tuple[Any, ...], str]] = []
    raw_terms = data.get("terms")
    terms: dict[Any, Any] = raw_terms if isinstance(raw_terms, dict) else {}
    seen: dict[str, tuple[Any, ...]] = {}
    for kind in ("key_points", "misconceptions"):
        items = data.get(kind)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            pid = item.get("id")
            if isinstance(pid, str):
                if pid in seen:
                    out.append(((kind, i, "id"), f"duplicate id {pid!r} (also {_field_path(seen[pid])})"))
                else:
                    seen[pid] = (kind, i, "id")
            for field in ("match", "partial", "exclude"):
                rules = item.get(field)
                if not isinstance(rules, list):
                    continue
                for j, rule in enumerate(rules):
                    for ref in _raw_refs(rule):
                        if ref not in terms:
                            out.append(((kind, i, field, j), f"unknown term ${ref} (define it under terms:)"))
    # a term that refers back to itself, directly or through others, would match its own name
    for name in terms:
        stack, visited = [name], set()
        while stack:
            cur = stack.pop()
            for k, v in enumerate(terms.get(cur) or []):
                if isinstance(v, str) and v.startswith("$"):
                    ref = v[1:]
                    if ref == name:
                        out.append((("terms", cur, k), f"term ${name} refers to itself (through ${cur})"))
                    elif ref not in terms:
                        out.append((("terms", cur, k), f"unknown term ${ref}"))
                    elif ref not in visited:
                        visited.add(ref)
                        stack.append(ref)
    scoring = data.get("scoring")
    if isinstance(scoring, dict) and scoring.get("mode") == "count" and isinstance(scoring.get("table"), list) and scoring["table"]:
        max_score = data.get("max_score", 100)
        if isinstance(max_score, int | float) and scoring["table"][-1] != max_score:
            out.append((("scoring", "table"), f"must end at max_score ({max_score:g})"))
    return list(dict.fromkeys(out))


def _raw_refs(rule: Any) -> list[str]:
    if isinstance(rule, str):
        return [rule[1:]] if rule.startswith("$") else []
    if isinstance(rule, dict) and isinstance(rule.get("all"), list):
        refs: list[str] = []
        for concept in rule["all"]:
            for v in concept if isinstance(concept, list) else [concept]:
                if isinstance(v, str) and v.startswith("$"):
                    refs.append(v[1:])
        return refs
    return []


def _dedupe_union_errors(errors: list[Any]) -> list[Any]:
    """Collapse the per-member errors pydantic emits for a union into the most useful one."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    order: list[tuple[Any, ...]] = []
    for err in errors:
        loc = tuple(err["loc"])
        # group by the location up to the first union tag
        cut = next((i for i, p in enumerate(loc) if _is_union_tag(p)), len(loc))
        key = loc[:cut]
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(err)
    out = []
    for key in order:
        errs = groups[key]
        if len(errs) == 1:
            out.append(errs[0])
            continue
        # A mapping was given: the str member's complaint is noise. Prefer the member
        # whose error is not a type mismatch and which reaches deepest.
        useful = [e for e in errs if not e["type"].endswith("_type")] or errs
        useful.sort(key=lambda e: -len(e["loc"]))
        first = useful[0]
        same_member = [e for e in useful if e["loc"][: len(key) + 1] == first["loc"][: len(key) + 1]]
        out.extend(same_member)
    return out


def _nearest_line(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def load_rubric(path: str | Path) -> Rubric:
    """Load one rubric file.

    Raises:
        RubricErrors: when the file cannot be read or is not a valid rubric.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RubricErrors([RubricError(f"cannot read: {exc}", file=str(path))]) from None
    return parse_rubric(text, source=str(path))
