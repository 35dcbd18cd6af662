"""`grader check`: keep a rubric bank (and an answer sheet) honest in CI.

Library only. Every check returns typed `Finding`s, grouped into `CaseResult`s (one per
rubric, reference answer, example or sheet answer) inside a `CheckReport`. The CLI, the
output formats (`grader.check_output`) and the pytest plugin all read that report.

Errors fail a check; warnings fail it only in strict mode.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict
from rapidfuzz import process

from .bank import rubric_files
from .errors import InputError, RubricError, RubricErrors
from .grade import grade
from .matcher import compile_phrase, compiled
from .normalize import normalize
from .result import Evidence, GradeResult
from .rubric import LANGS, Example, LocalText, RegexRule, Rubric, _line_index, _LineLoader, _nearest_line, _term_refs, parse_rubric

Severity = Literal["error", "warning"]
CaseKind = Literal["bank", "rubric", "reference", "example", "answer"]

DEFAULT_MIN_SCORE = 90.0
"""Default `--min-score` (percent) for answer sheets: the same bar as a rubric's reference answer."""

CODES: dict[str, str] = {
    # errors
    "parse": "the file is not a valid rubric (YAML or schema error)",
    "duplicate-id": "two rubrics in the bank share an id",
    "no-match-rule": "a key point or misconception has no match rule",
    "rule-never-matches": "a match rule is empty once normalised, so it can never match",
    "shared-alternative": "one alternative phrase earns two key points of the same rubric",
    "misconception-matches-reference": "a misconception's rules match the rubric's own reference answer",
    "reference-below-min": "the reference answer scores below reference_min",
    "missing-language": "the question has zh and en, but this text has only one",
    "bad-range": "an example's score range lies outside [0, max_score]",
    "unknown-id": "an example names a key point or misconception the rubric does not have",
    "example-out-of-range": "an example's score is outside its expected range",
    "example-met": "a point listed under an example's `met` was not met",
    "example-not-met": "a point listed under an example's `not_met` was met",
    "example-misconceptions": "the misconceptions flagged differ from the example's `misconceptions`",
    "unknown-question": "an answer sheet names a question id the bank does not have",
    "empty-answer": "an answer sheet entry is empty",
    "answer-below-min": "an answer scores below --min-score",
    "answer-misconception": "an answer states a misconception",
    # warnings
    "bare-string": "a plain string where the question has zh and en (the text is used for both)",
    "point-uncovered": "no example meets this key point",
    "misconception-untested": "no example flags this misconception",
    "no-reference-answer": "the rubric has no reference answer",
    "no-examples": "the rubric has no examples",
    "id-not-filename": "the rubric id differs from its file name",
    "unused-term": "a term bundle is never used",
    "answer-misses-points": "an answer passes --min-score but misses key points",
    "unanswered": "a question in the bank has no answer in the sheet",
}
"""Every finding code with a one-line meaning (also printed by `grader check --list-codes`)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Finding(_Model):
    """One problem found by a check."""

    severity: Severity
    """`error` fails the check; `warning` fails it only with --strict."""
    code: str
    """A stable code from `CODES`, e.g. `example-out-of-range`."""
    message: str
    """One line saying what is wrong."""
    file: str | None = None
    """The file the problem is in."""
    line: int | None = None
    """The 1-based line of the offending example, point or field."""
    rubric_id: str | None = None
    """The rubric (or sheet question) concerned."""
    field: str | None = None
    """The field path, e.g. `key_points[2].match[0]`."""
    detail: list[str] = []
    """Further lines: the per-point breakdown, the missing points, the corrections."""

    def where(self) -> str:
        """`file:line` (or just the file) for messages."""
        if not self.file:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file


class CaseResult(_Model):
    """One unit of checking: a rubric's structure, its reference answer, one example, one sheet answer."""

    kind: CaseKind
    """What was checked."""
    suite: str
    """The group the case belongs to: the rubric id, or the answer sheet's file name."""
    name: str
    """The case within its suite, e.g. `examples[3] (negated)` or `reference_answer.en`."""
    file: str | None = None
    """The file checked."""
    line: int | None = None
    """Where the case starts in the file."""
    findings: list[Finding] = []
    """Problems found (empty when the case passes)."""
    score: float | None = None
    """The graded score, for reference answers, examples and sheet answers."""
    max_score: float | None = None
    """The rubric's max_score, next to `score`."""
    expected: list[float] | None = None
    """The expected score range of an example."""

    def failed(self, *, strict: bool = False) -> bool:
        """True when an error (or, in strict mode, a warning) was found."""
        return any(f.severity == "error" or strict for f in self.findings)


class CheckReport(_Model):
    """Everything a `grader check` run found."""

    cases: list[CaseResult] = []
    """Every case checked, in order."""
    rubrics: int = 0
    """Rubric files checked."""
    examples: int = 0
    """Examples graded."""
    answers: int = 0
    """Sheet answers graded."""

    @property
    def findings(self) -> list[Finding]:
        """All findings, in case order."""
        return [f for c in self.cases for f in c.findings]

    @property
    def errors(self) -> list[Finding]:
        """Findings of severity error."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings of severity warning."""
        return [f for f in self.findings if f.severity == "warning"]

    def failed(self, *, strict: bool = False) -> bool:
        """True on any error, or on any warning when `strict`."""
        return bool(self.errors or (strict and self.warnings))


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadedRubric:
    """A parsed rubric with the YAML line of every field and the raw data (to tell bare strings apart)."""

    rubric: Rubric
    lines: dict[tuple[Any, ...], int]
    raw: dict[str, Any]
    file: str

    def line(self, *path: Any) -> int | None:
        """The line of `path` (keys and indices), or of its nearest ancestor."""
        return _nearest_line(self.lines, tuple(path))


STDIN = "-"
"""The path that stands for one rubric read from standard input (`grader draft … | grader check -`)."""
STDIN_SOURCE = "<stdin>"
"""How findings name that rubric."""


def load_for_check(path: str | Path, *, source: str | None = None) -> LoadedRubric:
    """Parse one rubric file, keeping its line index; `source` is the name used in messages (default: `path`).

    Raises:
        RubricErrors: the file cannot be read or is not a valid rubric (each error has file:line).
    """
    path = Path(path)
    source = source or str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RubricErrors([RubricError(f"cannot read: {exc}", file=source)]) from None
    return parse_for_check(text, source=source)


def stdin_text(data: bytes) -> str:
    """The rubric text piped to `grader check -` (UTF-8, with or without BOM).

    Raises:
        InputError: the bytes are not UTF-8.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{STDIN_SOURCE}: not UTF-8 text (byte {exc.start}); rubrics are UTF-8 YAML") from None


def parse_for_check(text: str, *, source: str = STDIN_SOURCE) -> LoadedRubric:
    """`load_for_check` for rubric text already read (from stdin); `source` names it in messages.

    Raises:
        RubricErrors: the text is not a valid rubric (each error has its line).
    """
    text = text.removeprefix("\ufeff")
    rubric = parse_rubric(text, source=source)
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        raw = loader.construct_document(node)
    finally:
        loader.dispose()
    return LoadedRubric(rubric, _line_index(node), raw, source)


def _load_all(paths: Sequence[Path], report: CheckReport, stdin: str | None = None) -> list[LoadedRubric]:
    """Load every rubric file under `paths` (`-`: the rubric text `stdin`); parse errors and duplicate ids become findings.

    Raises:
        InputError: a path does not exist or holds no rubric files; `-` given twice, or without text.
    """
    files: list[Path] = []
    for p in paths:
        if str(p) == STDIN:
            if stdin is None or not stdin.strip():
                raise InputError("-: no rubric on standard input (pipe one in, e.g. `grader draft … | grader check -`)")
            if Path(STDIN) in files:
                raise InputError("-: standard input can be given once")
            files.append(Path(STDIN))
            continue
        if not p.exists():
            raise InputError(f"no such file or folder: {p}")
        found = rubric_files(p)
        if not found:
            raise InputError(f"no rubric files (*.yaml) in {p}")
        files += [f for f in found if f.resolve() not in {g.resolve() for g in files}]
    loaded: list[LoadedRubric] = []
    first_by_id: dict[str, LoadedRubric] = {}
    for f in files:
        report.rubrics += 1
        try:
            lr = parse_for_check(stdin or "") if str(f) == STDIN else load_for_check(f)
        except RubricErrors as exc:
            findings = [
                Finding(
                    severity="error",
                    code="parse",
                    message=f"{e.field}: {e.detail}" if e.field else e.detail,
                    file=e.file or (str(f) if str(f) != STDIN else STDIN_SOURCE),
                    line=e.line,
                    field=e.field,
                )
                for e in exc.errors
            ]
            name = (f.stem, str(f)) if str(f) != STDIN else ("stdin", STDIN_SOURCE)
            report.cases.append(CaseResult(kind="rubric", suite=name[0], name="parse", file=name[1], line=1, findings=findings))
            continue
        rid = lr.rubric.id
        if rid in first_by_id:
            other = first_by_id[rid]
            finding = Finding(
                severity="error",
                code="duplicate-id",
                message=f"rubric id {rid!r} is already used by {other.file}:{other.line('id')}",
                file=lr.file,
                line=lr.line("id"),
                rubric_id=rid,
                field="id",
            )
            report.cases.append(CaseResult(kind="bank", suite=rid, name="unique id", file=lr.file, line=lr.line("id"), findings=[finding]))
        first_by_id.setdefault(rid, lr)
        loaded.append(lr)  # still checked: its other problems are worth knowing now
    return loaded


# --------------------------------------------------------------------------- breakdown


def breakdown(rubric: Rubric, result: GradeResult, *, expect_met: Iterable[str] = (), expect_not_met: Iterable[str] = ()) -> list[str]:
    """One line per key point and misconception: status, score earned, evidence.

    Points that contradict an example's `met`/`not_met` are marked `[expected met]` / `[expected not met]`.
    """
    want_met, want_not = set(expect_met), set(expect_not_met)
    total = sum(p.weight for p in result.points) or 1.0
    weighted = rubric.scoring.mode == "weighted"
    width = max((len(p.id) for p in result.points), default=0)
    marks = {"met": "+", "partial": "~", "missing": "-", "contradicted": "x", "unscored": "?"}
    lines = []
    for p in result.points:
        earned = f"{rubric.max_score * p.weight * p.credit / total:5.1f}/{rubric.max_score * p.weight / total:<5.1f}" if weighted else ""
        quote = "  <- " + _quotes(p.evidence, "  ") if p.evidence else ""
        note = ""
        if p.id in want_met and p.status != "met":
            note = "   [expected met]"
        elif p.id in want_not and p.status == "met":
            note = "   [expected not met]"
        lines.append(f"{marks[p.status]} {p.id:<{width}}  {p.status:<12} {earned}{quote}{note}".rstrip())
    for m in result.misconceptions:
        quote = "  <- " + _quotes(m.evidence, "  ") if m.evidence else ""
        lines.append(f"! misconception {m.id}  -{m.penalty:g}{quote}")
    for flag in result.flags:
        lines.append(f"flag: {flag}")
    return lines


def _quotes(evidence: Iterable[Evidence], sep: str = ", ") -> str:
    """The evidence texts, quoted, each once."""
    return sep.join(dict.fromkeys(f"“{_clip(e.text)}”" for e in evidence))


def _clip(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(x: float) -> str:
    return f"{x:g}"


# --------------------------------------------------------------------------- rubric checks


def _expand(rubric: Rubric, value: str, seen: frozenset[str] = frozenset()) -> list[str]:
    name = value[1:]
    if value.startswith("$") and name in rubric.terms and name not in seen:
        return [x for v in rubric.terms[name] for x in _expand(rubric, v, seen | {name})]
    return [value]


def _phrase_key(raw: str) -> tuple[str, ...]:
    # Two phrases are the same alternative when they compile to the same tokens
    # ("Warm-up" and "warm up" do), since the matcher cannot tell them apart.
    return tuple(t.stem for t in compile_phrase(raw).toks)


def _localtext_fields(rubric: Rubric) -> list[tuple[tuple[Any, ...], LocalText | None]]:
    out: list[tuple[tuple[Any, ...], LocalText | None]] = [
        (("question",), rubric.question),
        (("reference_answer",), rubric.reference_answer),
    ]
    for i, kp in enumerate(rubric.key_points):
        out += [(("key_points", i, "statement"), kp.statement), (("key_points", i, "hint"), kp.hint)]
    for i, mc in enumerate(rubric.misconceptions):
        out += [(("misconceptions", i, "statement"), mc.statement), (("misconceptions", i, "correction"), mc.correction)]
    return out


def _raw_at(raw: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        if isinstance(part, int) and isinstance(raw, list) and part < len(raw):
            raw = raw[part]
        elif isinstance(part, str) and isinstance(raw, dict):
            raw = raw.get(part)
        else:
            return None
    return raw


def _field(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + str(part)
    return text


def check_structure(lr: LoadedRubric) -> list[Finding]:
    """Static checks that need no grading: match rules, shared alternatives, languages, terms, ids."""
    r = lr.rubric
    out: list[Finding] = []

    def add(severity: Severity, code: str, message: str, path: tuple[Any, ...], detail: list[str] | None = None) -> None:
        out.append(
            Finding(
                severity=severity,
                code=code,
                message=message,
                file=lr.file,
                line=lr.line(*path),
                rubric_id=r.id,
                field=_field(path) or None,
                detail=detail or [],
            )
        )

    # Every point and misconception can match something.
    comp = compiled(r)
    for kind, items, citems in (("key_points", r.key_points, comp.points), ("misconceptions", r.misconceptions, comp.misconceptions)):
        what = "key point" if kind == "key_points" else "misconception"
        for i, (item, citem) in enumerate(zip(items, citems, strict=True)):
            if not item.match:
                add(
                    "error",
                    "no-match-rule",
                    f"{what} {citem.id!r} has no match rule, so it can never be {'met' if what == 'key point' else 'flagged'}",
                    (kind, i),
                )
                continue
            for j, crule in enumerate(citem.rules):
                if crule.regex is None and any(not concept for concept in crule.concepts):
                    add(
                        "error",
                        "rule-never-matches",
                        f"{what} {citem.id!r}: match[{j}] has no words once normalised, so it can never match",
                        (kind, i, "match", j),
                    )

    # No standalone alternative (phrase or regex) earns two key points.
    owner: dict[tuple[str, ...], tuple[int, int]] = {}
    for i, kp in enumerate(r.key_points):
        for j, rule in enumerate(kp.match):
            keys: list[tuple[tuple[str, ...], str]] = []
            if isinstance(rule, str):
                keys = [(_phrase_key(p), p) for p in _expand(r, rule)]
            elif isinstance(rule, RegexRule):
                keys = [(("regex:" + rule.regex,), f"regex {rule.regex}")]
            for key, shown in keys:
                if not key:
                    continue
                prev = owner.get(key)
                if prev is not None and prev[0] != i:
                    other = r.key_points[prev[0]].id
                    where = f"key_points[{prev[0]}].match[{prev[1]}], line {lr.line('key_points', prev[0], 'match', prev[1])}"
                    add(
                        "error",
                        "shared-alternative",
                        f"alternative {shown!r} earns both key points {other!r} ({where}) and {kp.id!r}; one phrase in an answer would count twice",
                        ("key_points", i, "match", j),
                    )
                else:
                    owner.setdefault(key, (i, j))

    # Both languages everywhere when the question has both.
    if r.languages == set(LANGS):
        for path, text in _localtext_fields(r):
            if text is None:
                continue
            raw = _raw_at(lr.raw, path)
            if isinstance(raw, str):
                add("warning", "bare-string", f"{_field(path)} is a plain string; the question has zh and en, so give both", path)
                continue
            missing = [lang for lang in LANGS if lang not in text.languages()]
            if missing:
                add("error", "missing-language", f"{_field(path)} has no {missing[0]} text, but the question is in zh and en", path)

    if r.reference_answer is None:
        add(
            "warning",
            "no-reference-answer",
            "no reference_answer: add one so `grader check` can test the rules against a full answer",
            ("id",),
        )
    if not r.examples:
        add("warning", "no-examples", "no examples: add answers with expected score ranges", ("id",))
    stem = Path(lr.file).stem
    if stem != r.id and lr.file != STDIN_SOURCE:  # text from stdin has no file name to agree with
        add("warning", "id-not-filename", f"id {r.id!r} differs from the file name {stem!r}", ("id",))
    used = set(_term_refs(r))
    for name in r.terms:
        if name not in used:
            add("warning", "unused-term", f"term ${name} is never used", ("terms", name))
    return out


def check_reference(lr: LoadedRubric) -> list[CaseResult]:
    """Grade each language of the reference answer: it must reach reference_min and flag no misconception."""
    r = lr.rubric
    cases: list[CaseResult] = []
    if r.reference_answer is None:
        return cases
    bare = isinstance(lr.raw.get("reference_answer"), str)
    for lang in LANGS:
        text = getattr(r.reference_answer, lang)
        if not text:
            continue
        path: tuple[Any, ...] = ("reference_answer",) if bare else ("reference_answer", lang)
        name = "reference_answer" if bare else f"reference_answer.{lang}"
        result = grade(r, text, lang=lang)
        findings: list[Finding] = []
        if result.percent < r.reference_min:
            missing = [f"{p.id} ({p.status})" for p in result.points if p.status != "met"]
            findings.append(
                Finding(
                    severity="error",
                    code="reference-below-min",
                    message=f"{name} scores {_fmt(result.score)}/{_fmt(r.max_score)} ({_fmt(result.percent)}%), below reference_min {_fmt(r.reference_min)}%"
                    + (f"; not met: {', '.join(missing)}" if missing else ""),
                    file=lr.file,
                    line=lr.line(*path),
                    rubric_id=r.id,
                    field=_field(path),
                    detail=breakdown(r, result),
                )
            )
        index = {mc.id: i for i, mc in enumerate(r.misconceptions)}
        for hit in result.misconceptions:
            quotes = _quotes(hit.evidence)
            sub = ("misconceptions", index[hit.id], "match", *_firing_rule(r, index[hit.id], text))
            findings.append(
                Finding(
                    severity="error",
                    code="misconception-matches-reference",
                    message=f"misconception {hit.id!r} matches the rubric's own {name} at {quotes}: its rules would penalise a correct answer",
                    file=lr.file,
                    line=lr.line(*sub),
                    rubric_id=r.id,
                    field=_field(sub),
                )
            )
        cases.append(
            CaseResult(
                kind="reference",
                suite=r.id,
                name=name,
                file=lr.file,
                line=lr.line(*path),
                findings=findings,
                score=result.score,
                max_score=r.max_score,
            )
        )
    return cases


def _firing_rule(rubric: Rubric, mc_index: int, text: str) -> tuple[int, ...]:
    """The index of the first rule of a misconception that fires on `text` (so errors point at it)."""
    comp = compiled(rubric)
    scan = comp.scan(normalize(text))
    item = comp.misconceptions[mc_index]
    for j, rule in enumerate(item.rules):
        if any(not h.negated for h in comp.item_hits(scan, item, [rule])):
            return (j,)
    return ()


def example_name(index: int, example: Example) -> str:
    """`examples[3] (negated)`: how an example is named in reports and test ids."""
    return f"examples[{index}]" + (f" ({example.kind})" if example.kind else "")


def check_example(lr: LoadedRubric, index: int) -> tuple[CaseResult, GradeResult]:
    """Grade one example and compare it with its expected range and assertions."""
    r = lr.rubric
    ex = r.examples[index]
    path = ("examples", index)
    name = example_name(index, ex)
    line = lr.line(*path)
    findings: list[Finding] = []

    def add(code: str, message: str, sub: tuple[Any, ...] = (), detail: list[str] | None = None) -> None:
        findings.append(
            Finding(
                severity="error",
                code=code,
                message=f"{name}: {message}",
                file=lr.file,
                line=lr.line(*path, *sub) if sub else line,
                rubric_id=r.id,
                field=_field(path + sub),
                detail=detail or [],
            )
        )

    lo, hi = ex.score
    if lo < 0 or hi > r.max_score:
        add("bad-range", f"expected range [{_fmt(lo)}, {_fmt(hi)}] is outside [0, {_fmt(r.max_score)}]", ("score",))
    point_ids = [kp.id for kp in r.key_points]
    mc_ids = [mc.id for mc in r.misconceptions]
    for key, known in (("met", point_ids), ("not_met", point_ids), ("misconceptions", mc_ids)):
        for j, pid in enumerate(getattr(ex, key) or []):
            if pid not in known:
                close = [c for c, _, _ in process.extract(pid, known, limit=2, score_cutoff=60)]
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                what = "key point" if key != "misconceptions" else "misconception"
                add("unknown-id", f"{key} names {pid!r}, which is not a {what} of this rubric{hint}", (key, j))

    result = grade(r, ex.answer)
    status = {p.id: p.status for p in result.points}
    table = breakdown(r, result, expect_met=ex.met, expect_not_met=ex.not_met)
    if not (lo - 1e-9 <= result.score <= hi + 1e-9):
        add("example-out-of-range", f"score {_fmt(result.score)} is not in the expected range [{_fmt(lo)}, {_fmt(hi)}]", (), table)
    not_met = [pid for pid in ex.met if pid in status and status[pid] != "met"]
    if not_met:
        add("example-met", "expected met but " + ", ".join(f"{pid} is {status[pid]}" for pid in not_met), ("met",), table)
    met = [pid for pid in ex.not_met if status.get(pid) == "met"]
    if met:
        add("example-not-met", f"expected not met but met: {', '.join(met)}", ("not_met",), table)
    if ex.misconceptions is not None:
        want = set(ex.misconceptions) & set(mc_ids)  # unknown ids are reported above
        got = {m.id for m in result.misconceptions}
        if want != got:
            parts = []
            if want - got:
                parts.append(f"not flagged: {', '.join(sorted(want - got))}")
            if got - want:
                parts.append(f"flagged but not expected: {', '.join(sorted(got - want))}")
            add("example-misconceptions", "; ".join(parts), ("misconceptions",), table)
    case = CaseResult(
        kind="example",
        suite=r.id,
        name=name,
        file=lr.file,
        line=line,
        findings=findings,
        score=result.score,
        max_score=r.max_score,
        expected=[lo, hi],
    )
    return case, result


def check_rubric(lr: LoadedRubric) -> list[CaseResult]:
    """Every check on one rubric: structure (with coverage warnings), reference answer, examples."""
    r = lr.rubric
    structure = CaseResult(kind="rubric", suite=r.id, name="rubric", file=lr.file, line=lr.line("id"), findings=check_structure(lr))
    examples = [check_example(lr, i) for i in range(len(r.examples))]
    if r.examples:
        met = {p.id for _, res in examples for p in res.points if p.status == "met"}
        flagged = {m.id for _, res in examples for m in res.misconceptions}
        for i, kp in enumerate(r.key_points):
            if kp.id not in met:
                structure.findings.append(
                    Finding(
                        severity="warning",
                        code="point-uncovered",
                        message=f"key point {kp.id!r} is met by no example; add an answer that earns it",
                        file=lr.file,
                        line=lr.line("key_points", i),
                        rubric_id=r.id,
                        field=f"key_points[{i}]",
                    )
                )
        for i, mc in enumerate(r.misconceptions):
            if mc.id not in flagged:
                structure.findings.append(
                    Finding(
                        severity="warning",
                        code="misconception-untested",
                        message=f"misconception {mc.id!r} is flagged by no example; add an answer that states it",
                        file=lr.file,
                        line=lr.line("misconceptions", i),
                        rubric_id=r.id,
                        field=f"misconceptions[{i}]",
                    )
                )
    return [structure, *check_reference(lr), *(case for case, _ in examples)]


def check_bank(paths: Sequence[str | Path], *, stdin: str | None = None) -> CheckReport:
    """Check every rubric under `paths` (folders or files; `-` is the rubric text `stdin`).

    Returns the report (see `CheckReport.failed`).

    Raises:
        InputError: a path does not exist or holds no rubric files (or `-` has no text).
    """
    report = CheckReport()
    for lr in _load_all([Path(p) for p in paths], report, stdin):
        cases = check_rubric(lr)
        report.examples += sum(1 for c in cases if c.kind == "example")
        report.cases += cases
    return report


# --------------------------------------------------------------------------- answer sheets


@dataclass(frozen=True)
class SheetAnswer:
    """One entry of an answer sheet."""

    question_id: str
    answer: str
    line: int


def load_answer_sheet(path: str | Path) -> list[SheetAnswer]:
    """Read an answer sheet: YAML (or JSON) mapping `question id: answer`, or JSONL lines `{"id": ..., "answer": ...}`.

    Raises:
        InputError: the file is unreadable or malformed (the message names file and line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"answer sheet not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        return _sheet_jsonl(text, str(path))
    return _sheet_yaml(text, str(path))


def _sheet_jsonl(text: str, source: str) -> list[SheetAnswer]:
    out: list[SheetAnswer] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}:{n}: invalid JSON: {exc.msg}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("answer"), str):
            raise InputError(f'{source}:{n}: each line must be an object {{"id": "<question id>", "answer": "<text>"}}')
        extra = set(obj) - {"id", "answer"}
        if extra:
            raise InputError(f"{source}:{n}: unknown key {sorted(extra)[0]!r} (expected only id and answer)")
        if obj["id"] in seen:
            raise InputError(f"{source}:{n}: question {obj['id']!r} is answered twice (first on line {seen[obj['id']]})")
        seen[obj["id"]] = n
        out.append(SheetAnswer(obj["id"], obj["answer"], n))
    if not out:
        raise InputError(f"{source}: the answer sheet is empty")
    return out


def _sheet_yaml(text: str, source: str) -> list[SheetAnswer]:
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise InputError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict) or not data:
        raise InputError(f"{source}:1: an answer sheet is a mapping of question id to answer text (`dropout: |` …)")
    lines = _line_index(node)
    out: list[SheetAnswer] = []
    for key, value in data.items():
        line = lines.get((str(key),), 1)
        if not isinstance(value, str):
            raise InputError(f"{source}:{line}: {key}: the answer must be text (use `{key}: |` for several lines)")
        out.append(SheetAnswer(str(key), value, line))
    return out


def check_answers(
    paths: Sequence[str | Path], sheet: str | Path, *, min_score: float = DEFAULT_MIN_SCORE, stdin: str | None = None
) -> CheckReport:
    """Grade an answer sheet against the rubrics under `paths`.

    Each answer below `min_score` percent, or stating a misconception, is an error listing
    what it misses; an answer that passes but misses points is a warning.

    Raises:
        InputError: a path or the sheet is missing or malformed.
    """
    report = CheckReport()
    bank: dict[str, Rubric] = {}
    for lr in _load_all([Path(p) for p in paths], report, stdin):
        bank.setdefault(lr.rubric.id, lr.rubric)  # a duplicate id is already an error; the first file wins
    entries = load_answer_sheet(sheet)
    source = str(sheet)
    suite = Path(sheet).name
    for entry in entries:
        report.answers += 1
        report.cases.append(_check_answer(bank, entry, source, suite, min_score))
    answered = {e.question_id for e in entries}
    for rid in sorted(set(bank) - answered):
        report.cases.append(
            CaseResult(
                kind="answer",
                suite=suite,
                name=rid,
                file=source,
                findings=[
                    Finding(
                        severity="warning",
                        code="unanswered",
                        message=f"question {rid!r} has no answer in the sheet",
                        file=source,
                        rubric_id=rid,
                    )
                ],
            )
        )
    return report


def _check_answer(bank: Mapping[str, Rubric], entry: SheetAnswer, source: str, suite: str, min_score: float) -> CaseResult:
    def finding(severity: Severity, code: str, message: str, detail: list[str] | None = None) -> Finding:
        return Finding(
            severity=severity, code=code, message=message, file=source, line=entry.line, rubric_id=entry.question_id, detail=detail or []
        )

    case = CaseResult(kind="answer", suite=suite, name=entry.question_id, file=source, line=entry.line)
    rubric = bank.get(entry.question_id)
    if rubric is None:
        close = [c for c, _, _ in process.extract(entry.question_id, list(bank), limit=2, score_cutoff=80)]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        case.findings.append(finding("error", "unknown-question", f"{entry.question_id!r} is not a question in the bank{hint}"))
        return case
    if not entry.answer.strip():
        case.findings.append(finding("error", "empty-answer", f"{entry.question_id}: the answer is empty"))
        return case
    result = grade(rubric, entry.answer)
    case.score, case.max_score = result.score, rubric.max_score
    status = {p.id: p.status for p in result.points}
    gaps = [f"{status[m.id]} {m.id}: {m.statement}" + (f"  (hint: {m.hint})" if m.hint else "") for m in result.missing]
    wrong = [f"misconception {m.id}: {m.correction}" for m in result.misconceptions]
    summary = f"{entry.question_id}: scores {_fmt(result.score)}/{_fmt(rubric.max_score)} ({_fmt(result.percent)}%)"
    if result.percent < min_score:
        case.findings.append(finding("error", "answer-below-min", f"{summary}, below --min-score {_fmt(min_score)}%", gaps + wrong))
    for m in result.misconceptions:
        quotes = _quotes(m.evidence)
        case.findings.append(
            finding("error", "answer-misconception", f"{entry.question_id}: states a misconception ({m.id}) at {quotes}", [m.correction])
        )
    if result.percent >= min_score and gaps:
        case.findings.append(finding("warning", "answer-misses-points", f"{summary}, but misses {len(gaps)} key point(s)", gaps))
    return case


def run_check(
    paths: Sequence[str | Path], *, answers: str | Path | None = None, min_score: float = DEFAULT_MIN_SCORE, stdin: str | None = None
) -> CheckReport:
    """`grader check`: check the bank under `paths`, or, with `answers`, grade that sheet against it.
    A path `-` is one rubric whose text is `stdin`."""
    if answers is not None:
        return check_answers(paths, answers, min_score=min_score, stdin=stdin)
    return check_bank(paths, stdin=stdin)
