"""`grader progress`: best and last scores, the weakest key points, a trend chart, and export."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .errors import GraderError, InputError
from .history import Attempt
from .rubric import Rubric
from .scheduler import QuestionState, Round, rounds, states

RECENT_ROUNDS = 5
"""How many recent rounds of a question count towards a key point's weakness."""


@dataclass
class WeakPoint:
    """A key point the learner keeps missing."""

    rubric_id: str
    point_id: str
    missed: int
    """Rounds (of the last RECENT_ROUNDS) whose first try missed it."""
    seen: int
    """Rounds counted."""
    weakness: float
    """Recency-weighted miss rate in [0, 1]; recent rounds count more."""


def weakest_points(attempts: Sequence[Attempt], *, limit: int = 8) -> list[WeakPoint]:
    """Key points missed most on first tries, over each question's last few rounds."""
    by_question: dict[str, list[Round]] = {}
    for r in rounds(attempts):
        by_question.setdefault(r.rubric_id, []).append(r)
    # Every point a question had, from its attempts (a point never missed still counts as seen).
    points: dict[str, list[str]] = {}
    for a in attempts:
        ids = points.setdefault(a.rubric_id, [])
        ids.extend(p.id for p in a.points if p.id not in ids)
    out = []
    for qid, rs in by_question.items():
        recent = rs[-RECENT_ROUNDS:]
        weights = [0.5 ** (len(recent) - 1 - i) for i in range(len(recent))]  # newest round weighs 1, the one before 0.5, …
        for pid in points.get(qid, []):
            miss = [pid in r.missed for r in recent]
            weakness = sum(w for w, m in zip(weights, miss, strict=True) if m) / sum(weights)
            if any(miss):
                out.append(WeakPoint(qid, pid, sum(miss), len(recent), round(weakness, 3)))
    out.sort(key=lambda w: (-w.weakness, -w.missed, w.rubric_id, w.point_id))
    return out[:limit]


def daily_trend(attempts: Sequence[Attempt], *, days: int = 14) -> list[tuple[dt.date, float, int]]:
    """(day, mean first-try percent, rounds) for the last `days` days with practice, oldest first."""
    by_day: dict[dt.date, list[float]] = {}
    for r in rounds(attempts):
        by_day.setdefault(dt.datetime.fromtimestamp(r.ts).date(), []).append(r.first)
    return [(d, round(sum(v) / len(v), 1), len(v)) for d, v in sorted(by_day.items())][-days:]


def _when(due: float | None, now: float, lang: str) -> str:
    if due is None:
        return "—"
    left = due - now
    zh = lang == "zh"
    if left <= 0:
        return "现在" if zh else "now"
    if left < 3600:
        return f"{max(1, round(left / 60))} 分钟后" if zh else f"in {max(1, round(left / 60))} min"
    if left < 86_400:
        return f"{round(left / 3600)} 小时后" if zh else f"in {round(left / 3600)} h"
    return f"{round(left / 86_400)} 天后" if zh else f"in {round(left / 86_400)} d"


def _pct(value: float | None) -> Text:
    if value is None:
        return Text("—", style="dim")
    style = "green" if value >= 85 else "yellow" if value >= 60 else "red"
    return Text(f"{value:g}%", style=style)


_L = {
    "en": {
        "none": "No practice yet. Run `grader practice` to start.",
        "questions": "Questions",
        "q": "question",
        "rounds": "rounds",
        "best": "best",
        "last": "last",
        "level": "level",
        "next": "next review",
        "weak": "Weakest key points (first tries, recent rounds count more)",
        "missed": "missed {m} of last {n}",
        "trend": "Trend: mean first-try score per day",
        "no_weak": "No key point missed recently. Well done!",
    },
    "zh": {
        "none": "还没有练习记录。运行 `grader practice` 开始吧。",
        "questions": "题目",
        "q": "题目",
        "rounds": "轮次",
        "best": "最好",
        "last": "最近",
        "level": "熟练度",
        "next": "下次复习",
        "weak": "最薄弱的要点（按首次作答统计，越近权重越大）",
        "missed": "最近 {n} 次中漏了 {m} 次",
        "trend": "趋势：每天首次作答的平均分",
        "no_weak": "最近没有遗漏的要点，很好！",
    },
}


def render_progress(
    attempts: Sequence[Attempt],
    bank: Mapping[str, Rubric] | None,
    *,
    now: float,
    lang: str = "en",
) -> RenderableType:
    """The progress report: per-question table, weakest points, and a daily trend chart."""
    t = _L["zh" if lang == "zh" else "en"]
    if not attempts:
        return Text(t["none"], style="dim")
    ids = sorted({a.rubric_id for a in attempts})
    st: dict[str, QuestionState] = states(ids, attempts)
    table = Table(title=t["questions"], title_justify="left", show_edge=False)
    for col, justify in (("q", "left"), ("rounds", "right"), ("best", "right"), ("last", "right"), ("level", "right"), ("next", "right")):
        table.add_column(t[col], justify=justify)  # type: ignore[arg-type]  # literal justify values
    for qid in sorted(ids, key=lambda q: st[q].due or 0.0):
        s = st[qid]
        table.add_row(qid, str(len(s.rounds)), _pct(s.best), _pct(s.last), f"{s.level}/5", _when(s.due, now, lang))

    parts: list[RenderableType] = [table, Text(f"\n{t['weak']}", style="bold")]
    weak = weakest_points(attempts)
    if not weak:
        parts.append(Text(f"  {t['no_weak']}", style="green"))
    for w in weak:
        statement = w.point_id
        if bank is not None:
            # A question or point no longer in the bank shows its id.
            with contextlib.suppress(KeyError, GraderError):
                statement = bank[w.rubric_id].point(w.point_id).statement.get(lang)
        line = Text("  ")
        line.append(_bar(w.weakness, 10), style="red")
        line.append(f" {w.rubric_id}", style="bold")
        line.append(f" · {statement}")
        line.append(f"  ({t['missed'].format(m=w.missed, n=w.seen)})", style="dim")
        parts.append(line)

    trend = daily_trend(attempts)
    parts.append(Text(f"\n{t['trend']}", style="bold"))
    for day, mean, n in trend:
        line = Text(f"  {day.isoformat()} ")
        line.append(_bar(mean / 100, 30), style="green" if mean >= 85 else "yellow" if mean >= 60 else "red")
        line.append(f" {mean:5.1f}%", style="bold")
        line.append(f"  ({n})", style="dim")
        parts.append(line)
    return Group(*parts)


def _bar(share: float, width: int) -> str:
    # Eighth blocks give a smooth bar in any monospaced terminal font.
    eighths = round(max(0.0, min(1.0, share)) * width * 8)
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if rest else ""
    return ("█" * full + partial).ljust(width, "·")


EXPORT_COLUMNS = [
    "id",
    "time",
    "question",
    "round",
    "try",
    "score",
    "max_score",
    "percent",
    "met",
    "missed",
    "misconceptions",
    "hints_used",
    "saw_answer",
    "language",
    "engine",
    "rubric_version",
    "answer",
]


def export(attempts: Sequence[Attempt], path: Path, fmt: str | None = None) -> int:
    """Write the history to `path` as CSV or JSONL (from `fmt`, else the file's extension).

    Returns the number of attempts written.

    Raises:
        InputError: the format cannot be told from the name.
    """
    fmt = fmt or {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(path.suffix.lower())
    if fmt not in ("csv", "jsonl"):
        raise InputError(f"cannot tell the export format of {path}: name it .csv or .jsonl")
    rows = [_row(a) for a in attempts]
    if fmt == "jsonl":
        with path.open("w", encoding="utf-8") as f:
            for a, row in zip(attempts, rows, strict=True):
                full = {**row, "met": a.met, "missed": a.missed, "misconceptions": a.misconceptions}
                full["points"] = [p.model_dump() for p in a.points]
                f.write(json.dumps(full, ensure_ascii=False) + "\n")
    else:
        # utf-8-sig so that spreadsheet programs show Chinese answers correctly.
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return len(rows)


def _row(a: Attempt) -> dict[str, object]:
    return {
        "id": a.id,
        "time": dt.datetime.fromtimestamp(a.ts, tz=dt.timezone.utc).isoformat(timespec="seconds"),
        "question": a.rubric_id,
        "round": a.round_id,
        "try": a.try_no,
        "score": a.score,
        "max_score": a.max_score,
        "percent": a.percent,
        "met": ";".join(a.met),
        "missed": ";".join(a.missed),
        "misconceptions": ";".join(a.misconceptions),
        "hints_used": a.hints_used,
        "saw_answer": int(a.saw_answer),
        "language": a.language,
        "engine": a.engine,
        "rubric_version": a.rubric_version,
        "answer": a.answer,
    }
