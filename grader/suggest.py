"""Rule suggestion from graded answers: `grader suggest RUBRIC --graded DATASET`.

1. Split the rubric's rows into a mining fold and a held-out fold (deterministic, by answer id).
2. On the mining fold, mine word n-grams (en, 1-3 words) and character n-grams (zh, 2-4
   characters) that separate answers humans scored higher than the rubric did from the rest;
   near the evidence of answers the rubric over-scored, mine phrases for exclusions.
3. Try each candidate as a new alternative (or exclusion) on the key points it would help,
   regrading the affected answers; keep, greedily, those that raise QWK on the mining fold.
4. Report every proposal's effect on the held-out fold, which took no part in choosing it.

Nothing is written unless `apply_proposals` is called (`--apply`), which adds each accepted phrase
to the YAML text as one new line, so every other line (comments, order, quoting) stays as it was.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .draft import EN_STOP
from .errors import InputError
from .evaluate import GradedRow, qwk, read_graded, to_scale
from .grade import grade
from .normalize import normalize_text
from .result import GradeResult
from .rubric import Rubric, load_rubric, parse_rubric

_EN_WORD = re.compile(r"[a-z][a-z0-9']*")
_ZH_RUN = re.compile(r"[\u4e00-\u9fff]+")
STOPWORDS = EN_STOP  # one English stop list, shared with `grader draft`
_ZH_STOP = frozenset("的了是在和与或及也就都而并着地得这那个一我你他她它们有为以于")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Proposal(_Model):
    """One suggested change to a key point."""

    kind: Literal["alternative", "exclude"]
    """`alternative`: add the phrase to the point's `match`; `exclude`: add it to `exclude`."""
    point: str
    """The key point's id."""
    phrase: str
    """The phrase, as it would be written in the rubric."""
    support: int
    """Mining-fold answers the phrase was mined from (under-scored, or over-scored for exclusions)."""
    against: int
    """Mining-fold answers where the phrase would push the score the wrong way."""
    mined_delta: float
    """Change in QWK on the mining fold, this proposal alone."""
    heldout_delta: float
    """Change in QWK on the held-out fold, this proposal alone."""
    accepted: bool = False
    """Chosen (greedily, on the mining fold) for the proposed rubric."""


class SuggestReport(_Model):
    """Proposals and their measured effect."""

    rubric_id: str
    source: str | None
    n_mining: int
    n_heldout: int
    base_mining: float | None
    """QWK of the rubric as it is, on the mining fold."""
    base_heldout: float | None
    """QWK of the rubric as it is, on the held-out fold."""
    final_mining: float | None
    """QWK with every accepted proposal, on the mining fold."""
    final_heldout: float | None
    """QWK with every accepted proposal, on the held-out fold (the honest figure)."""
    proposals: list[Proposal]


# --------------------------------------------------------------------------- mining


def ngrams(text: str, *, max_words: int = 3, zh_sizes: Iterable[int] = (2, 3, 4)) -> set[str]:
    """Candidate phrases in normalised `text`: en word 1..max_words-grams (not starting or ending
    with a stopword) and zh character n-grams (not starting or ending with a function character)."""
    out: set[str] = set()
    norm = normalize_text(text)
    words = _EN_WORD.findall(norm)
    for n in range(1, max_words + 1):
        for i in range(len(words) - n + 1):
            gram = words[i : i + n]
            if gram[0] in STOPWORDS or gram[-1] in STOPWORDS or len(gram[0]) < 3 or len(gram[-1]) < 3:
                continue
            out.add(" ".join(gram))
    for run in _ZH_RUN.findall(norm):
        for n in zh_sizes:
            for i in range(len(run) - n + 1):
                gram = run[i : i + n]
                if gram[0] in _ZH_STOP or gram[-1] in _ZH_STOP:
                    continue
                out.add(gram)
    return out


def _may_contain(norm: str, phrase: str) -> bool:
    """A loose prefilter: could the matcher find `phrase` in `norm` (inflections and typos allowed)?"""
    if _ZH_RUN.search(phrase):
        return all(ch in norm for ch in phrase)
    return all(w[: max(3, len(w) - 3)] in norm for w in phrase.split())


def fold_of(row: GradedRow, folds: int, seed: int = 0) -> int:
    """A row's fold, stable across runs: a hash of its answer id (or source row)."""
    key = f"{seed}|{row.answer_id or row.row}"
    return zlib.crc32(key.encode()) % folds


def with_rule(rubric: Rubric, point_id: str, kind: str, phrase: str) -> Rubric:
    """A copy of `rubric` with `phrase` added to a key point's match (or exclude) list."""
    data = rubric.model_dump(mode="python", exclude_none=True)
    for kp in data["key_points"]:
        if kp["id"] == point_id:
            key = "match" if kind == "alternative" else "exclude"
            kp[key] = [*kp.get(key, []), phrase]
    return Rubric.model_validate(data)


@dataclass
class _Fold:
    rows: list[GradedRow]
    norms: list[str]
    human: list[int]
    scores: list[float]
    results: list[GradeResult]
    top: int
    grams: list[set[str]] = field(default_factory=list)

    def kappa(self, scores: Sequence[float] | None = None) -> float | None:
        s = self.scores if scores is None else scores
        return qwk(self.human, [to_scale(v, self.top) for v in s], 0, self.top)


def _grade_fold(rubric: Rubric, rows: list[GradedRow], grade_fn: Callable[..., GradeResult]) -> _Fold:
    top = round(rubric.max_score)
    results = [grade_fn(rubric, r.answer) for r in rows]
    return _Fold(
        rows=rows,
        norms=[normalize_text(r.answer) for r in rows],
        human=[to_scale(r.score, top) for r in rows],
        scores=[res.score for res in results],
        results=results,
        top=top,
    )


def _rescored(fold: _Fold, rubric: Rubric, phrases: Sequence[str], base: Sequence[float] | None = None) -> list[float]:
    """Fold scores under `rubric`, regrading only answers that may contain one of `phrases`."""
    scores = list(fold.scores if base is None else base)
    for i, norm in enumerate(fold.norms):
        if any(_may_contain(norm, p) for p in phrases):
            scores[i] = grade(rubric, fold.rows[i].answer).score
    return scores


def _delta(after: float | None, before: float | None) -> float:
    return (after or 0.0) - (before or 0.0)


def _alternative_candidates(rubric: Rubric, fold: _Fold, *, min_support: int, limit: int) -> list[tuple[str, str, int, int]]:
    """(point, phrase, support, against) for alternatives, best first."""
    pos = [i for i in range(len(fold.rows)) if fold.human[i] > to_scale(fold.scores[i], fold.top)]
    neg = [i for i in range(len(fold.rows)) if fold.human[i] <= to_scale(fold.scores[i], fold.top)]
    cpos: Counter[str] = Counter(g for i in pos for g in fold.grams[i])
    cneg: Counter[str] = Counter(g for i in neg for g in fold.grams[i])
    ranked = []
    for gram, p in cpos.items():
        if p < min_support:
            continue
        n = cneg[gram]
        precision = (p + 0.5) / (p + n + 1)
        if precision < 0.65:
            continue
        ranked.append((p * precision - 0.5 * n * (1 - precision), gram, p, n))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    out = []
    seen_points: Counter[str] = Counter()
    for _, gram, p, n in ranked[: limit * 3]:
        # The point it would help most: the one most often not met where the phrase occurs in under-scored answers.
        missing: Counter[str] = Counter()
        for i in pos:
            if gram in fold.grams[i]:
                for pr in fold.results[i].points:
                    if pr.status != "met":
                        missing[pr.id] += 1
        for point, _count in missing.most_common(2):
            out.append((point, gram, p, n))
            seen_points[point] += 1
        if len(out) >= limit:
            break
    return out


def _exclude_candidates(rubric: Rubric, fold: _Fold, *, min_support: int, limit: int) -> list[tuple[str, str, int, int]]:
    """(point, phrase, support, against) for exclusions: phrases near the evidence of over-scored answers."""
    near: dict[str, Counter[str]] = {}
    good: dict[str, Counter[str]] = {}
    for i, res in enumerate(fold.results):
        over = to_scale(fold.scores[i], fold.top) > fold.human[i]
        answer = fold.rows[i].answer
        for pr in res.points:
            if pr.status != "met" or not pr.evidence:
                continue
            grams: set[str] = set()
            for ev in pr.evidence:
                grams |= ngrams(answer[max(0, ev.start - 25) : ev.end + 25], max_words=2, zh_sizes=(2, 3))
            grams -= ngrams(" ".join(ev.text for ev in pr.evidence), max_words=2, zh_sizes=(2, 3))
            (near if over else good).setdefault(pr.id, Counter()).update(grams)
    ranked = []
    for point, counts in near.items():
        ok = good.get(point, Counter())
        for gram, p in counts.items():
            n = ok[gram]
            if p < min_support or (p + 0.5) / (p + n + 1) < 0.75:
                continue
            ranked.append((p - 2 * n, point, gram, p, n))
    ranked.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [(point, gram, p, n) for _, point, gram, p, n in ranked[:limit]]


def suggest(
    rubric: Rubric,
    rows: Sequence[GradedRow],
    *,
    folds: int = 3,
    seed: int = 0,
    min_support: int = 5,
    candidates: int = 40,
    min_gain: float = 0.002,
) -> tuple[SuggestReport, Rubric]:
    """Mine, measure and choose proposals. Returns the report and the rubric with the accepted ones.

    Raises:
        InputError: too few rows to split, or a human score outside the rubric's scale.
    """
    fn = grade  # matcher-only: proposals are matcher rules, measured with the matcher
    for row in rows:
        if not 0 <= row.score <= rubric.max_score:
            raise InputError(f"{row.source}:{row.row}: score {row.score:g} is outside the rubric's scale 0..{rubric.max_score:g}")
    held = [r for r in rows if fold_of(r, folds, seed) == 0]
    mine = [r for r in rows if fold_of(r, folds, seed) != 0]
    if len(mine) < 2 * min_support or len(held) < 2:
        raise InputError(f"{rubric.id}: {len(rows)} graded answers are too few to mine and hold out (need at least {3 * min_support})")
    mf = _grade_fold(rubric, mine, fn)
    hf = _grade_fold(rubric, held, fn)
    mf.grams = [ngrams(r.answer) for r in mine]
    base_m, base_h = mf.kappa(), hf.kappa()

    cands: list[tuple[Literal["alternative", "exclude"], str, str, int, int]]
    cands = [("alternative", *c) for c in _alternative_candidates(rubric, mf, min_support=min_support, limit=candidates)]
    cands += [("exclude", *c) for c in _exclude_candidates(rubric, mf, min_support=min_support, limit=candidates // 2)]
    proposals: list[tuple[Proposal, Rubric]] = []
    for kind, point, phrase, support, against in cands:
        try:
            changed = with_rule(rubric, point, kind, phrase)
        except ValueError:
            continue  # a phrase the rubric model rejects is no proposal
        # An alternative can only change answers that contain it; an exclusion may change any.
        if kind == "alternative":
            dm = _delta(mf.kappa(_rescored(mf, changed, [phrase])), base_m)
        else:
            dm = _delta(mf.kappa([fn(changed, r.answer).score for r in mine]), base_m)
        if dm < min_gain:
            continue
        if kind == "alternative":
            dh = _delta(hf.kappa(_rescored(hf, changed, [phrase])), base_h)
        else:
            dh = _delta(hf.kappa([fn(changed, r.answer).score for r in held]), base_h)
        proposals.append(
            (
                Proposal(
                    kind=kind,
                    point=point,
                    phrase=phrase,
                    support=support,
                    against=against,
                    mined_delta=round(dm, 4),
                    heldout_delta=round(dh, 4),
                ),
                changed,
            )
        )
    proposals.sort(key=lambda t: (-t[0].mined_delta, t[0].phrase))

    # Greedy on the mining fold: keep a proposal only if it still helps on top of those kept so far.
    current, cur_m = rubric, base_m
    cur_scores = list(mf.scores)
    for prop, _ in proposals:
        try:
            trial = with_rule(current, prop.point, prop.kind, prop.phrase)
        except ValueError:
            continue
        if prop.kind == "alternative":
            scores = _rescored(mf, trial, [prop.phrase], base=cur_scores)
        else:
            scores = [fn(trial, r.answer).score for r in mine]
        k = mf.kappa(scores)
        if _delta(k, cur_m) >= min_gain:
            prop.accepted = True
            current, cur_m, cur_scores = trial, k, scores
    final_h = hf.kappa([fn(current, r.answer).score for r in held])
    report = SuggestReport(
        rubric_id=rubric.id,
        source=rubric.source,
        n_mining=len(mine),
        n_heldout=len(held),
        base_mining=base_m,
        base_heldout=base_h,
        final_mining=cur_m,
        final_heldout=final_h,
        proposals=[p for p, _ in proposals],
    )
    return report, current


# --------------------------------------------------------------------------- applying


def _scalar(phrase: str) -> str:
    """`phrase` as a YAML scalar that reads back the same in block and in flow context."""
    import yaml

    try:
        if yaml.safe_load(phrase) == phrase and yaml.safe_load(f"[{phrase}]") == [phrase] and phrase.strip() == phrase:
            return phrase
    except yaml.YAMLError:
        pass
    return json.dumps(phrase, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _line_end(text: str, pos: int) -> int:
    """Index of the line break ending the line that holds `pos` (or of the text's end)."""
    if pos > 0 and text[pos - 1] == "\n":
        pos -= 1
    end = text.find("\n", pos)
    if end < 0:
        return len(text)
    return end - 1 if end > 0 and text[end - 1] == "\r" else end


def _content_end(node: Any) -> int:
    """Where a node's own text ends (a block collection ends with its last value, not at the next key)."""
    import yaml

    if isinstance(node, yaml.ScalarNode) or node.flow_style or not node.value:
        return int(node.end_mark.index)
    last = node.value[-1]
    return _content_end(last[1] if isinstance(node, yaml.MappingNode) else last)


def _add_rule(text: str, prop: Proposal) -> str | None:
    """`text` with the proposal's phrase appended to its key point's list, touching nothing else.

    Returns None when the phrase is already there.

    Raises:
        InputError: the key point is not in the file, or is written in a way this edit cannot extend.
    """
    import yaml

    nl = "\r\n" if "\r\n" in text else "\n"
    root = yaml.compose(text, Loader=yaml.SafeLoader)

    def get(node: Any, key: str) -> tuple[Any, Any] | None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    return k, v
        return None

    points = get(root, "key_points")
    kp = None
    if points is not None and isinstance(points[1], yaml.SequenceNode):
        kp = next((n for n in points[1].value if (i := get(n, "id")) is not None and i[1].value == prop.point), None)
    if kp is None:
        raise InputError(f"key point {prop.point!r} is not in the file")
    key = "match" if prop.kind == "alternative" else "exclude"
    comment = f"# suggested: held-out QWK {prop.heldout_delta:+.3f}, support {prop.support}"
    item = _scalar(prop.phrase)
    found = get(kp, key)
    if kp.flow_style or (found is not None and not isinstance(found[1], yaml.SequenceNode)):
        raise InputError(f"key point {prop.point!r}: its {key} is not a list this edit can extend; add {item} by hand")
    if found is None:  # a new key, after the match list, in the key point's own column
        anchor = get(kp, "match") or kp.value[-1]
        col = anchor[0].start_mark.column
        at = _line_end(text, _content_end(anchor[1]))
        return text[:at] + f"{nl}{' ' * col}{key}:{nl}{' ' * (col + 2)}- {item}  {comment}" + text[at:]
    knode, seq = found
    if any(isinstance(n, yaml.ScalarNode) and n.value == prop.phrase for n in seq.value):
        return None
    start, end = seq.start_mark.index, seq.end_mark.index
    if not seq.flow_style:
        first = seq.value[0].start_mark.index
        dash = text.rindex("-", 0, first)
        col = dash - (text.rfind("\n", 0, dash) + 1)
        at = _line_end(text, _content_end(seq))
        return text[:at] + f"{nl}{' ' * col}- {item}  {comment}" + text[at:]
    after = text[end : _line_end(text, end)]
    if knode.start_mark.line == seq.end_mark.line and (not after.strip() or after.lstrip().startswith("#")):
        # A one-line flow list becomes a block list (each rule verbatim), so the addition gets its comment.
        col = knode.start_mark.column + 2
        items = [text[n.start_mark.index : n.end_mark.index] for n in seq.value]
        lines = [f"{nl}{' ' * col}- {t}" for t in items] + [f"{nl}{' ' * col}- {item}  {comment}"]
        return text[:start].rstrip(" \t") + after.rstrip(" \t") + "".join(lines) + text[_line_end(text, end) :]
    # A flow list over several lines: append in flow style, the comment after its closing bracket.
    close = end - 1
    sep = ", " if seq.value else ""
    edited = text[:close] + sep + item + text[close:]
    at = _line_end(edited, end + len(sep) + len(item))
    rest = edited[end + len(sep) + len(item) : at]
    if not rest.strip():
        return edited[:at].rstrip(" \t") + f"  {comment}" + edited[at:]
    if rest.lstrip().startswith("#"):
        return edited[:at].rstrip(" \t") + f"; {comment[2:]}" + edited[at:]
    return edited


def apply_proposals(path: str | Path, proposals: Iterable[Proposal]) -> int:
    """Write accepted proposals into the rubric file. Returns how many (nothing is written for 0).

    Each phrase is added to its list as a new line with a `# suggested: ...` comment; no other line
    changes (a one-line flow list `match: [a, b]` becomes a block list with the same items). The new
    text must load as a rubric whose rules are the old ones plus the additions, and its own examples
    must still land where they did, before the file is replaced.

    Raises:
        RubricErrors: the edited rubric would not load (the file is left unchanged).
        InputError: a proposal would break one of the rubric's examples, or cannot be added to
            the file as written (the file is left unchanged).
    """
    path = Path(path)
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")  # bytes, not read_text: line endings stay as they are
    old = parse_rubric(text, source=str(path))
    new_text, expected, n = text, old, 0
    for prop in proposals:
        if not prop.accepted:
            continue
        try:
            edited = _add_rule(new_text, prop)
        except InputError as exc:
            raise InputError(f"{path}: not applied: {exc}") from exc
        if edited is None:
            continue
        new_text, n = edited, n + 1
        new = parse_rubric(new_text, source=str(path))  # raises RubricErrors; the file is untouched then
        expected = with_rule(expected, prop.point, prop.kind, prop.phrase)
        if new.model_dump(exclude_none=True) != expected.model_dump(exclude_none=True):
            raise InputError(f"{path}: not applied: adding {prop.phrase!r} to {prop.point!r} would change other rules; add it by hand")
    if n == 0:
        return 0
    broken = [
        f"examples[{i}] ({ex.kind or 'example'}): {grade(new, ex.answer).score:g} not in {ex.score}"
        for i, ex in enumerate(new.examples)
        if ex.score[0] <= grade(old, ex.answer).score <= ex.score[1] and not ex.score[0] <= grade(new, ex.answer).score <= ex.score[1]
    ]
    if broken:
        raise InputError(f"{path}: not applied, the proposals would break the rubric's own examples: " + "; ".join(broken))
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + new_text.encode("utf-8"))
    return n


# --------------------------------------------------------------------------- the command


def rows_for(rubric: Rubric, rows: Sequence[GradedRow], *, question: str | None = None, id_format: str = "{}") -> list[GradedRow]:
    """The dataset rows for `rubric`: question id `question`, or whose id maps to the rubric's id,
    or every row when the dataset holds a single question.

    Raises:
        InputError: no row belongs to the rubric.
    """
    if question is not None:
        out = [r for r in rows if r.question_id == question]
    else:
        out = [r for r in rows if id_format.format(r.question_id) == rubric.id]
        if not out and len({r.question_id for r in rows}) == 1:
            out = list(rows)
    if not out:
        ids = sorted({r.question_id for r in rows})
        raise InputError(f"no rows for rubric {rubric.id!r} (question ids: {', '.join(ids[:10])}); pick one with --question or --id-format")
    return out


def run_suggest(
    rubric_path: str | Path,
    graded: Sequence[str | Path],
    *,
    columns: Mapping[str, str] | None = None,
    question: str | None = None,
    id_format: str = "{}",
    folds: int = 3,
    seed: int = 0,
    min_support: int = 5,
    candidates: int = 40,
    min_gain: float = 0.002,
    apply: bool = False,
) -> tuple[SuggestReport, int]:
    """Load, suggest, and with `apply` write the accepted proposals. Returns (report, written).

    Raises:
        InputError, RubricErrors: unreadable inputs.
    """
    rubric = load_rubric(rubric_path)
    rows = [r for g in graded for r in read_graded(g, columns=columns)]
    report, _ = suggest(
        rubric,
        rows_for(rubric, rows, question=question, id_format=id_format),
        folds=folds,
        seed=seed,
        min_support=min_support,
        candidates=candidates,
    )
    written = apply_proposals(rubric_path, report.proposals) if apply else 0
    return report, written


def format_report(report: SuggestReport, *, applied: int | None = None) -> str:
    """Proposals as a table, with the held-out effect next to the mined one."""

    def k(x: float | None) -> str:
        return "—" if x is None else f"{x:.3f}"

    lines = [
        f"grader suggest — {report.rubric_id}: {report.n_mining} answers mined, {report.n_heldout} held out",
        f"QWK now:          mining {k(report.base_mining)}   held-out {k(report.base_heldout)}",
        f"QWK if accepted:  mining {k(report.final_mining)}   held-out {k(report.final_heldout)}",
        "",
    ]
    if not report.proposals:
        lines.append("no proposal improves agreement on the mining fold")
    else:
        lines.append(f"{'':2}{'kind':<12} {'point':<22} {'phrase':<28} {'support':>7} {'against':>7} {'Δ mined':>8} {'Δ held-out':>10}")
        for p in report.proposals:
            mark = "✓ " if p.accepted else "  "
            lines.append(
                f"{mark}{p.kind:<12} {p.point:<22} {p.phrase:<28} {p.support:>7} {p.against:>7} {p.mined_delta:>+8.3f} {p.heldout_delta:>+10.3f}"
            )
        lines.append("")
        lines.append("✓ = accepted greedily on the mining fold; the held-out column took no part in choosing.")
    if applied is None:
        lines.append("nothing written; rerun with --apply to add the ✓ proposals to the rubric file")
    else:
        lines.append(
            f"wrote {applied} proposal{'s' * (applied != 1)} to {report.source}"
            if applied
            else "nothing written: no accepted proposal to add"
        )
    return "\n".join(lines)
