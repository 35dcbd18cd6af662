"""Agreement with human graders: `grader eval DATASET --bank DIR`.

Reads rows of (question id, answer, human score[, second human score]), grades every answer,
and reports Pearson, Spearman, quadratic weighted kappa, RMSE, MAE and a confusion matrix per
question and overall, the human-human ceiling when a second score exists, and the worst
disagreements with their per-point breakdown. The metrics are plain-Python formulas (no numpy).
"""

from __future__ import annotations

import csv
import html
import json
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .batch import parse_columns as batch_parse_columns
from .errors import InputError
from .grade import grade
from .result import GradeResult
from .rubric import Rubric

if TYPE_CHECKING:
    from .judge import JudgeConfig

GradeFn = Callable[[Rubric, str], GradeResult]
"""Grades one answer; `grade` (the matcher) by default, or a judge-backed function."""

ROLES = ("question", "answer", "score", "score2", "id")
REQUIRED = ("question", "answer", "score")
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "question": ("question_id", "qid", "question", "rubric_id", "essay_set", "题号", "题目"),
    "answer": ("answer", "student_answer", "response", "essay_text", "答案", "回答", "作答"),
    "score": ("score", "human_score", "score1", "gold", "分数", "得分", "人工评分"),
    "score2": ("score2", "human_score2", "second_score", "分数2", "复评"),
    "id": ("answer_id", "id", "student_id", "student", "学号"),
}


# --------------------------------------------------------------------------- metrics


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r, or None when either side is constant or there are fewer than 2 pairs."""
    n = len(x)
    if n < 2 or n != len(y):
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson on average ranks (None when undefined)."""
    return pearson(ranks(x), ranks(y))


def confusion(a: Sequence[int], b: Sequence[int], lo: int, hi: int) -> list[list[int]]:
    """Counts[i][j] of rows with a == lo+i and b == lo+j (a: human rows, b: machine columns)."""
    k = hi - lo + 1
    m = [[0] * k for _ in range(k)]
    for u, v in zip(a, b, strict=True):
        m[u - lo][v - lo] += 1
    return m


def qwk(a: Sequence[int], b: Sequence[int], lo: int, hi: int) -> float | None:
    """Quadratic weighted kappa of two integer ratings in [lo, hi].

    1 - Σ w·O / Σ w·E with w_ij = (i-j)² / (k-1)², E the outer product of the marginals.
    None when undefined: fewer than 2 rows, or no expected disagreement (both raters give one
    and the same score). One constant rater gives 0, "no agreement beyond chance": a rubric that
    scores every answer alike is not informative, and must not drop out of a mean as undefined.
    """
    n = len(a)
    if n < 2 or hi <= lo:
        return None
    obs = confusion(a, b, lo, hi)
    k = hi - lo + 1
    ra = [sum(row) for row in obs]
    rb = [sum(obs[i][j] for i in range(k)) for j in range(k)]
    num = den = 0.0
    for i in range(k):
        for j in range(k):
            w = (i - j) ** 2 / (k - 1) ** 2
            num += w * obs[i][j]
            den += w * ra[i] * rb[j] / n
    if den == 0:
        return None
    return 1 - num / den


def rmse(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Root mean squared difference (None for no rows)."""
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(x, y, strict=True)) / len(x)) if x else None


def mae(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Mean absolute difference (None for no rows)."""
    return sum(abs(a - b) for a, b in zip(x, y, strict=True)) / len(x) if x else None


def to_scale(score: float, top: int) -> int:
    """A score as an integer category in [0, top] (half rounds up)."""
    return min(max(math.floor(score + 0.5), 0), top)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Agreement(_Model):
    """How two raters agree on the same rows."""

    n: int
    """Rows compared."""
    scale: list[int]
    """[low, high] of the integer scale used for QWK and the confusion matrix."""
    pearson: float | None
    """Pearson's r on the raw scores (None when a rater is constant)."""
    spearman: float | None
    """Spearman's rho on the raw scores."""
    qwk: float | None
    """Quadratic weighted kappa on the integer scale."""
    rmse: float | None
    """Root mean squared error, in score units."""
    mae: float | None
    """Mean absolute error, in score units."""
    exact: float | None
    """Share of rows with the same integer score."""
    confusion: list[list[int]]
    """Rows: the reference rater (human) score; columns: the other rater's score."""


def agreement(ref: Sequence[float], other: Sequence[float], top: int) -> Agreement:
    """Every metric for `other` against `ref`, both on the scale 0..top."""
    ai = [to_scale(v, top) for v in ref]
    bi = [to_scale(v, top) for v in other]
    n = len(ref)
    return Agreement(
        n=n,
        scale=[0, top],
        pearson=pearson(ref, other),
        spearman=spearman(ref, other),
        qwk=qwk(ai, bi, 0, top),
        rmse=rmse(ref, other),
        mae=mae(ref, other),
        exact=sum(u == v for u, v in zip(ai, bi, strict=True)) / n if n else None,
        confusion=confusion(ai, bi, 0, top),
    )


# --------------------------------------------------------------------------- reading


@dataclass(slots=True)
class GradedRow:
    """One human-scored answer."""

    source: str
    row: int
    """Row number as a spreadsheet shows it (header = 1), or the JSONL line number."""
    question_id: str
    answer: str
    score: float
    score2: float | None = None
    answer_id: str = ""


def parse_columns(spec: str | None) -> dict[str, str]:
    """`question=题号,answer=答案,score=分数,score2=复评` → {role: column} (as in `grader batch`).

    Raises:
        InputError: an unknown role or a malformed pair.
    """
    return batch_parse_columns(spec, ROLES) or {}


def _canon(name: str) -> str:
    return "".join(ch for ch in str(name) if ch not in " _-\t").casefold()


def _pick(keys: Sequence[str], role: str, columns: Mapping[str, str], source: str) -> str | None:
    canon = {_canon(k): k for k in keys}
    wanted = [columns[role]] if role in columns else list(DEFAULT_COLUMNS[role])
    for name in wanted:
        if _canon(name) in canon:
            return canon[_canon(name)]
    if role in columns:
        raise InputError(f"{source}: no column {columns[role]!r} for {role} (columns: {', '.join(keys) or '(none)'})")
    if role in REQUIRED:
        raise InputError(f"{source}: no {role} column (columns: {', '.join(keys) or '(none)'}); map one with --columns {role}=NAME")
    return None


def _number(value: Any, where: str, what: str) -> float:
    try:
        x = float(str(value).strip())
    except ValueError:
        raise InputError(f"{where}: {what} {value!r} is not a number") from None
    if not math.isfinite(x):
        raise InputError(f"{where}: {what} {value!r} is not a finite number")
    return x


def _records(path: Path, encoding: str | None) -> Iterator[tuple[int, dict[str, Any], list[str]]]:
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".tsv", ".jsonl", ".ndjson"}:
        raise InputError(f"{path}: unsupported format {suffix or '(no extension)'!r}; use .csv, .tsv or .jsonl")
    if not path.is_file():
        raise InputError(f"dataset not found: {path}")
    from .batch import detect_encoding  # one encoding sniffer for every reader

    enc = encoding or detect_encoding(path)
    try:
        if suffix in {".jsonl", ".ndjson"}:
            with path.open(encoding=enc) as f:
                for lineno, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InputError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from None
                    if not isinstance(obj, dict):
                        raise InputError(f"{path}:{lineno}: a JSONL line must be an object")
                    yield lineno, obj, list(obj)
            return
        csv.field_size_limit(1 << 24)
        with path.open(encoding=enc, newline="") as f:
            reader = csv.reader(f, delimiter="\t" if suffix == ".tsv" else ",")
            header = [h.strip() for h in next(reader, [])]
            if not header:
                raise InputError(f"{path}: the file is empty")
            for rowno, fields in enumerate(reader, start=2):
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if len(fields) != len(header):
                    raise InputError(f"{path}:{rowno}: {len(fields)} fields, the header has {len(header)}")
                yield rowno, dict(zip(header, fields, strict=True)), header
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid {enc} text ({exc.reason})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV: {exc}") from None


def read_graded(path: str | Path, *, columns: Mapping[str, str] | None = None, encoding: str | None = None) -> list[GradedRow]:
    """Every row of a human-scored dataset (CSV, TSV or JSONL).

    Raises:
        InputError: a missing file or column, or a row whose score is not a number (names file:row).
    """
    path = Path(path)
    columns = dict(columns or {})
    out: list[GradedRow] = []
    roles: dict[str, str | None] | None = None
    for rowno, rec, keys in _records(path, encoding):
        if roles is None or path.suffix.lower() in {".jsonl", ".ndjson"}:
            roles = {role: _pick(keys, role, columns, str(path)) for role in ROLES}
        where = f"{path}:{rowno}"
        q, a, s = (rec.get(roles[r] or "") for r in REQUIRED)
        qid = "" if q is None else str(q).strip()
        if not qid:
            raise InputError(f"{where}: empty question id")
        s2_raw = rec.get(roles["score2"]) if roles["score2"] else None
        s2 = None if s2_raw is None or str(s2_raw).strip() == "" else _number(s2_raw, where, "score2")
        aid = rec.get(roles["id"]) if roles["id"] else None
        out.append(
            GradedRow(
                source=str(path),
                row=rowno,
                question_id=qid,
                answer="" if a is None else str(a),
                score=_number(s, where, "score"),
                score2=s2,
                answer_id="" if aid is None else str(aid),
            )
        )
    if not out:
        raise InputError(f"{path}: no rows")
    return out


def resolve_rubric(question_id: str, bank: Mapping[str, Rubric], id_format: str = "{}") -> Rubric | None:
    """The rubric for a dataset's question id: `id_format.format(qid)` (e.g. `asap-{}`), else None."""
    rid = id_format.format(question_id)
    if rid not in bank:  # Bank raises UnknownRubricError (not KeyError), so no .get()
        return None
    return bank[rid]


# --------------------------------------------------------------------------- the evaluation


class Disagreement(_Model):
    """One answer where the rubric and the human disagree most."""

    source: str
    row: int
    answer_id: str
    question_id: str
    rubric_id: str
    answer: str
    human: float
    machine: float
    max_score: float
    breakdown: list[str]
    """One line per key point: status, evidence (from `grader check`'s breakdown)."""


class QuestionEval(_Model):
    """Agreement on one question."""

    question_id: str
    rubric_id: str
    max_score: float
    n: int
    human_mean: float
    machine_mean: float
    machine: Agreement
    """Rubric against the (first) human score."""
    human: Agreement | None = None
    """Second human against the first, on rows that have both."""
    pairs: list[tuple[float, float]] = Field(default=[], exclude=True)
    """(human, rubric) score per row, for the plots (left out of the JSON)."""


class EvalReport(_Model):
    """The whole evaluation."""

    dataset: list[str]
    bank: str
    engine: str
    n: int
    overall_scale: str
    """`native` when every question shares one max_score, else `percent/10` (scores mapped to 0..10)."""
    overall: Agreement
    overall_human: Agreement | None = None
    mean_qwk: float | None
    """Mean of per-question QWK (the usual ASAP summary), over questions where QWK is defined."""
    qwk_undefined: list[str] = []
    """Questions left out of `mean_qwk`: QWK undefined (fewer than 2 answers, or both raters giving one same score)."""
    questions: list[QuestionEval]
    worst: list[Disagreement]
    skipped: dict[str, int] = {}
    """Rows not evaluated, by reason (e.g. `unknown question 7`)."""
    usage: dict[str, Any] = {}
    """Token usage and cost reported by the judge, when one was used."""


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def evaluate(
    rows: Sequence[GradedRow],
    bank: Mapping[str, Rubric],
    *,
    id_format: str = "{}",
    grade_fn: GradeFn | None = None,
    worst: int = 10,
    engine: str = "matcher",
    bank_name: str = "",
) -> EvalReport:
    """Grade every row and measure agreement with the human scores.

    Rows whose question has no rubric are skipped and counted. Raises InputError when no row
    has a rubric, or when a human score lies outside [0, max_score] (naming file:row).
    """
    from .check import breakdown

    fn: GradeFn = grade_fn or (lambda r, a: grade(r, a))
    by_q: dict[str, list[tuple[GradedRow, GradeResult, Rubric]]] = {}
    skipped: dict[str, int] = {}
    for row in rows:
        rubric = resolve_rubric(row.question_id, bank, id_format)
        if rubric is None:
            key = f"no rubric {id_format.format(row.question_id)!r} for question {row.question_id}"
            skipped[key] = skipped.get(key, 0) + 1
            continue
        for what, value in (("score", row.score), ("score2", row.score2)):
            if value is not None and not 0 <= value <= rubric.max_score:
                raise InputError(
                    f"{row.source}:{row.row}: {what} {value:g} is outside the rubric's scale 0..{rubric.max_score:g} ({rubric.id})"
                )
        result = fn(rubric, row.answer) if row.answer.strip() else _empty(rubric)
        by_q.setdefault(row.question_id, []).append((row, result, rubric))
    if not by_q:
        raise InputError("no row has a rubric in the bank: " + "; ".join(skipped) + " (see --id-format)")

    questions: list[QuestionEval] = []
    tops = {triples[0][2].max_score for triples in by_q.values()}
    native = len(tops) == 1
    all_h: list[float] = []
    all_m: list[float] = []
    all_h1: list[float] = []
    all_h2: list[float] = []
    scored: list[tuple[float, GradedRow, GradeResult, Rubric]] = []
    for qid in sorted(by_q, key=_natural):
        triples = by_q[qid]
        rubric = triples[0][2]
        top = round(rubric.max_score)
        h = [t[0].score for t in triples]
        m = [t[1].score for t in triples]
        pairs = [(t[0].score, t[0].score2) for t in triples if t[0].score2 is not None]
        hh = agreement([p[0] for p in pairs], [p[1] for p in pairs], top) if pairs else None
        questions.append(
            QuestionEval(
                question_id=qid,
                rubric_id=rubric.id,
                max_score=rubric.max_score,
                n=len(triples),
                human_mean=_mean(h),
                machine_mean=_mean(m),
                machine=agreement(h, m, top),
                human=hh,
                pairs=list(zip(h, m, strict=True)),
            )
        )
        scale = 1.0 if native else 10 / rubric.max_score
        all_h += [v * scale for v in h]
        all_m += [v * scale for v in m]
        all_h1 += [p[0] * scale for p in pairs]
        all_h2 += [p[1] * scale for p in pairs]
        scored += [(abs(t[1].score - t[0].score) / rubric.max_score, *t) for t in triples]
    overall_top = round(next(iter(tops))) if native else 10
    scored.sort(key=lambda s: (-s[0], s[1].source, s[1].row))
    qwks = [q.machine.qwk for q in questions if q.machine.qwk is not None]
    return EvalReport(
        dataset=sorted({r.source for r in rows}),
        bank=bank_name,
        engine=engine,
        n=len(all_h),
        overall_scale="native" if native else "percent/10",
        overall=agreement(all_h, all_m, overall_top),
        overall_human=agreement(all_h1, all_h2, overall_top) if all_h1 else None,
        mean_qwk=_mean(qwks) if qwks else None,
        qwk_undefined=[q.question_id for q in questions if q.machine.qwk is None],
        questions=questions,
        worst=[
            Disagreement(
                source=row.source,
                row=row.row,
                answer_id=row.answer_id,
                question_id=row.question_id,
                rubric_id=rubric.id,
                answer=row.answer,
                human=row.score,
                machine=res.score,
                max_score=rubric.max_score,
                breakdown=breakdown(rubric, res),
            )
            for gap, row, res, rubric in scored[:worst]
            if gap > 0
        ],
        skipped=skipped,
    )


def _empty(rubric: Rubric) -> GradeResult:
    return grade(rubric, " ")


def _natural(qid: str) -> tuple[int, str]:
    return (int(qid), "") if qid.isdigit() else (1 << 30, qid)


# --------------------------------------------------------------------------- the judge hook


def judge_grade_fn(config: JudgeConfig) -> tuple[GradeFn, dict[str, Any]]:
    """A grade function backed by the LLM judge, and a dict it fills with token usage.

    Usage is summed from each result's `meta["usage"]` (prompt_tokens, completion_tokens, cost, …).
    """
    from .judge import grade_with_judge

    usage: dict[str, Any] = {}

    def run(rubric: Rubric, answer: str) -> GradeResult:
        result = grade_with_judge(rubric, answer, config=config)
        used = result.meta.get("usage")
        if isinstance(used, dict):
            for k, v in used.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    usage[k] = round(usage.get(k, 0) + v, 6)
        return result

    return run, usage


# --------------------------------------------------------------------------- output


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _confusion_text(a: Agreement, indent: str = "    ") -> list[str]:
    lo, hi = a.scale
    if hi - lo > 12:
        return [f"{indent}(confusion matrix: {hi - lo + 1}×{hi - lo + 1}, see --format json or --html)"]
    width = max(4, len(str(max((max(r) for r in a.confusion), default=0))) + 1)
    corner = "h\\m"
    head = f"{indent}{corner:>5}" + "".join(f"{j:>{width}}" for j in range(lo, hi + 1))
    rows = [f"{indent}{i + lo:>5}" + "".join(f"{c:>{width}}" for c in r) for i, r in enumerate(a.confusion)]
    return [head, *rows]


def _excluded(report: EvalReport) -> str:
    # Say how many questions the mean leaves out, so a mean over 3 of 10 questions is not read as over 10.
    k = len(report.qwk_undefined)
    if not k:
        return ""
    defined = len(report.questions) - k
    names = ", ".join(report.qwk_undefined[:5]) + (", …" if k > 5 else "")
    return (
        f" (over {defined} of {len(report.questions)} questions; {k} excluded, QWK undefined with fewer than"
        f" 2 answers, or both raters giving one same score: {names})"
    )


def format_text(report: EvalReport) -> str:
    """A terminal report: overall, per question, the human ceiling, and the worst disagreements."""
    lines = [f"grader eval — {report.n} answers, engine {report.engine}, bank {report.bank}"]
    lines.append("")
    head = (
        f"{'question':<12} {'rubric':<14} {'n':>5} {'QWK':>6} {'r':>6} {'rho':>6} {'RMSE':>6} {'MAE':>6} {'exact':>6}   human-human QWK / r"
    )
    lines.append(head)
    lines.append("-" * len(head))

    def row(label: str, rid: str, a: Agreement, hh: Agreement | None) -> str:
        ceiling = f"   {_f(hh.qwk)} / {_f(hh.pearson)}" if hh else ""
        return f"{label:<12} {rid:<14} {a.n:>5} {_f(a.qwk):>6} {_f(a.pearson):>6} {_f(a.spearman):>6} {_f(a.rmse, 2):>6} {_f(a.mae, 2):>6} {_f(a.exact, 2):>6}{ceiling}"

    for q in report.questions:
        lines.append(row(q.question_id, q.rubric_id, q.machine, q.human))
    lines.append("-" * len(head))
    scale = "" if report.overall_scale == "native" else " (0..10)"
    lines.append(row("overall" + scale, "", report.overall, report.overall_human))
    lines.append(f"mean QWK over questions: {_f(report.mean_qwk)}{_excluded(report)}")
    lines.append("")
    lines.append("confusion matrix, overall (rows: human, columns: rubric)")
    lines += _confusion_text(report.overall)
    if report.usage:
        lines.append("")
        lines.append("judge usage: " + ", ".join(f"{k} {v}" for k, v in report.usage.items()))
    for reason, count in report.skipped.items():
        lines.append(f"skipped {count} rows: {reason}")
    if report.worst:
        lines.append("")
        lines.append(f"worst {len(report.worst)} disagreements")
        for d in report.worst:
            answer = " ".join(d.answer.split())
            answer = answer if len(answer) <= 200 else answer[:199] + "…"
            lines.append("")
            lines.append(f"{d.source}:{d.row}  {d.rubric_id}  human {d.human:g}  rubric {d.machine:g}  (of {d.max_score:g})")
            lines.append(f"  “{answer}”")
            lines += [f"    {b}" for b in d.breakdown]
    return "\n".join(lines)


def format_json(report: EvalReport) -> str:
    """The report as JSON (the EvalReport model)."""
    return report.model_dump_json(indent=2)


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child,td.l{text-align:left}.grid{display:flex;flex-wrap:wrap;gap:2em}
td.cm{min-width:2.2em;text-align:center}pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}
.q{margin-bottom:2em}small{color:#666}
"""


def _scatter_svg(h: Sequence[float], m: Sequence[float], top: float, qid: str, size: int = 260) -> str:
    pad = 30
    span = size - 2 * pad
    rng = random.Random(qid)  # jitter so tied integer scores stay visible; seeded: same page every run
    jit = 0.015 * top
    dots = []
    for x, y in zip(h, m, strict=True):
        cx = pad + span * min(max((x + rng.uniform(-jit, jit)) / top, 0), 1)
        cy = pad + span * (1 - min(max((y + rng.uniform(-jit, jit)) / top, 0), 1))
        dots.append(f'<circle class="dot" cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="#2563eb" fill-opacity="0.35"/>')
    return (
        f'<svg class="scatter" data-question="{html.escape(qid)}" data-points="{len(dots)}" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="human vs rubric scores">'
        f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" stroke="#999"/>'
        f'<line x1="{pad}" y1="{pad + span}" x2="{pad + span}" y2="{pad}" stroke="#bbb" stroke-dasharray="4 3"/>'
        + "".join(dots)
        + f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle" font-size="11">human (0–{top:g})</text>'
        f'<text x="10" y="{size / 2}" font-size="11" transform="rotate(-90 10 {size / 2})" text-anchor="middle">rubric</text></svg>'
    )


def _confusion_html(a: Agreement, qid: str) -> str:
    lo, hi = a.scale
    if hi - lo > 20:
        return "<p><small>scale too wide for a confusion table; see the JSON output</small></p>"
    peak = max((max(r) for r in a.confusion), default=0) or 1
    head = "<tr><th>human \\ rubric</th>" + "".join(f"<th>{j}</th>" for j in range(lo, hi + 1)) + "</tr>"
    body = []
    for i, r in enumerate(a.confusion):
        cells = []
        for j, c in enumerate(r):
            shade = 0.08 + 0.8 * c / peak if c else 0
            colour = "#16a34a" if i == j else "#dc2626"
            cells.append(f'<td class="cm" data-count="{c}" style="background:{colour}{int(shade * 255):02x}">{c}</td>')
        body.append(f"<tr><th>{i + lo}</th>{''.join(cells)}</tr>")
    return f'<table class="confusion" data-question="{html.escape(qid)}">{head}{"".join(body)}</table>'


def format_html(report: EvalReport) -> str:
    """A small self-contained page (no scripts, no external files): metrics, scatter and confusion plots."""
    e = html.escape
    out = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>grader eval</title><style>{_CSS}</style></head><body>"]
    out.append(f"<h1>Agreement with human graders</h1><p>{report.n} answers · engine {e(report.engine)} · bank {e(report.bank)}</p>")
    out.append(
        "<table id=metrics><tr><th>question</th><th>rubric</th><th>n</th><th>QWK</th><th>Pearson</th><th>Spearman</th><th>RMSE</th><th>MAE</th><th>human–human QWK</th></tr>"
    )
    for q in report.questions:
        a = q.machine
        out.append(
            f'<tr data-question="{e(q.question_id)}"><td>{e(q.question_id)}</td><td class=l>{e(q.rubric_id)}</td><td>{a.n}</td><td class=qwk>{_f(a.qwk)}</td>'
            f"<td>{_f(a.pearson)}</td><td>{_f(a.spearman)}</td><td>{_f(a.rmse, 2)}</td><td>{_f(a.mae, 2)}</td><td>{_f(q.human.qwk) if q.human else '—'}</td></tr>"
        )
    o = report.overall
    out.append(
        f"<tr><th>overall</th><td></td><td>{o.n}</td><td>{_f(o.qwk)}</td><td>{_f(o.pearson)}</td><td>{_f(o.spearman)}</td>"
        f"<td>{_f(o.rmse, 2)}</td><td>{_f(o.mae, 2)}</td><td>{_f(report.overall_human.qwk) if report.overall_human else '—'}</td></tr></table>"
    )
    out.append(f"<p>mean QWK over questions: <b id=mean-qwk>{_f(report.mean_qwk)}</b>{e(_excluded(report))}</p>")
    for q in report.questions:
        h, m = [p[0] for p in q.pairs], [p[1] for p in q.pairs]
        out.append(f"<div class=q><h2>{e(q.question_id)} <small>{e(q.rubric_id)}</small></h2><div class=grid>")
        out.append(_scatter_svg(h, m, q.max_score, q.question_id))
        out.append(_confusion_html(q.machine, q.question_id))
        out.append("</div></div>")
    if report.worst:
        out.append("<h2>Worst disagreements</h2>")
        for d in report.worst:
            out.append(
                f"<div class=worst><p><b>{e(d.rubric_id)}</b> {e(d.source)}:{d.row} — human {d.human:g}, rubric {d.machine:g} (of {d.max_score:g})</p>"
                f"<blockquote>{e(d.answer)}</blockquote><pre>{e(chr(10).join(d.breakdown))}</pre></div>"
            )
    out.append("</body></html>")
    return "\n".join(out)


def run_eval(
    datasets: Sequence[str | Path],
    bank: Mapping[str, Rubric],
    *,
    columns: Mapping[str, str] | None = None,
    encoding: str | None = None,
    id_format: str = "{}",
    judge: JudgeConfig | None = None,
    worst: int = 10,
    bank_name: str = "",
    html_path: str | Path | None = None,
) -> EvalReport:
    """Read the datasets, evaluate (the matcher, or with the judge given `judge`), and write the HTML page.

    Raises:
        InputError: unreadable data, a missing column, a bad score.
    """
    try:
        id_format.format("1")
    except (KeyError, IndexError, ValueError):
        raise InputError(f"--id-format {id_format!r}: use {{}} where the question id goes, e.g. 'asap-{{}}'") from None
    rows = [r for d in datasets for r in read_graded(d, columns=columns, encoding=encoding)]
    grade_fn: GradeFn | None = None
    usage: dict[str, Any] = {}
    engine = "matcher"
    if judge is not None:
        grade_fn, usage = judge_grade_fn(judge)
        engine = f"judge ({judge.model}, {judge.policy})"
    report = evaluate(rows, bank, id_format=id_format, grade_fn=grade_fn, worst=worst, engine=engine, bank_name=bank_name)
    report.usage = usage
    if html_path is not None:
        Path(html_path).write_text(format_html(report), encoding="utf-8")
    return report
