"""Terminal rendering of a result: score, earned points with evidence, hints, corrections."""

from __future__ import annotations

import sys

from rich.console import Console, Group, RenderableType
from rich.text import Text

from .result import GradeResult
from .rubric import Rubric

_LABELS = {
    "en": {
        "score": "Score",
        "earned": "Earned",
        "missing": "Missing",
        "partial": "partly",
        "contradicted": "contradicted (negated in your answer)",
        "unscored": "unscored",
        "hint": "hint",
        "misconceptions": "Misconceptions",
        "answer": "Your answer (evidence highlighted)",
        "flags": "Flags",
        "none": "nothing yet",
    },
    "zh": {
        "score": "得分",
        "earned": "已答到",
        "missing": "未答到",
        "partial": "部分",
        "contradicted": "被否定（回答中否定了这一点）",
        "unscored": "未评分",
        "hint": "提示",
        "misconceptions": "错误观点",
        "answer": "你的回答（高亮为得分依据）",
        "flags": "标记",
        "none": "暂无",
    },
}


_FLAG_NAMES = {
    "en": {
        "injection_suspected": "text addressed to the grader (ignored)",
        "empty_answer": "empty answer",
        "truncated": "answer truncated",
        "unscored_points": "some points could not be scored by the judge",
        "engines_disagree": "matcher and judge disagree",
        "ungrounded_quote": "the judge quoted words that are not in the answer",
    },
    "zh": {
        "injection_suspected": "回答中有对评分系统的指令（已忽略）",
        "empty_answer": "回答为空",
        "truncated": "回答过长，已截断",
        "unscored_points": "部分要点未能由模型评分",
        "engines_disagree": "规则与模型判断不一致",
        "ungrounded_quote": "模型引用的文字不在回答中",
    },
}


def labels(lang: str) -> dict[str, str]:
    """UI strings in `lang` (zh or en)."""
    return _LABELS["zh" if lang == "zh" else "en"]


def highlighted_answer(answer: str, result: GradeResult) -> Text:
    """The answer with earned evidence in green and misconception evidence in red."""
    text = Text(answer)
    for p in result.points:
        style = "bold green" if p.status in ("met", "partial") else "bold yellow" if p.status == "contradicted" else None
        if style:
            for e in p.evidence:
                text.stylize(style, e.start, e.end)
    for m in result.misconceptions:
        for e in m.evidence:
            text.stylize("bold red", e.start, e.end)
    return text


def render_result(result: GradeResult, rubric: Rubric, answer: str, *, show_statements: bool = True) -> RenderableType:
    """A readable report. With show_statements=False, missing points show only their hints."""
    lang = result.feedback_lang
    t = labels(lang)
    parts: list[RenderableType] = []
    head = Text()
    head.append(f"{t['score']}: ", style="bold")
    head.append(f"{result.score:g} / {result.max_score:g}", style="bold cyan")
    head.append(f"  ({result.percent:g}%)  ", style="cyan")
    head.append(rubric.question.get(lang), style="dim")
    parts.append(head)

    earned = [p for p in result.points if p.status in ("met", "partial")]
    parts.append(Text(f"\n✔ {t['earned']}", style="bold green"))
    if not earned:
        parts.append(Text(f"  {t['none']}", style="dim"))
    for p in earned:
        line = Text(f"  • {rubric.point(p.id).statement.get(lang)}")
        if p.status == "partial":
            line.append(f" ({t['partial']})", style="yellow")
        quotes = "  ".join(f"“{e.text}”" for e in p.evidence)
        if quotes:
            line.append(f"  ← {quotes}", style="green")
        parts.append(line)

    if result.missing:
        parts.append(Text(f"\n✘ {t['missing']}", style="bold yellow"))
        status = {p.id: p.status for p in result.points}
        for m in result.missing:
            line = Text("  • ")
            if show_statements or not m.hint:
                line.append(m.statement)
            if m.hint:
                line.append(("  " if show_statements else "") + f"{t['hint']}: {m.hint}", style="dim")
            if status.get(m.id) == "contradicted":
                line.append(f"  [{t['contradicted']}]", style="yellow")
            elif status.get(m.id) == "unscored":
                line.append(f"  [{t['unscored']}]", style="magenta")
            parts.append(line)

    if result.misconceptions:
        parts.append(Text(f"\n⚠ {t['misconceptions']}", style="bold red"))
        for mc in result.misconceptions:
            quotes = "  ".join(f"“{e.text}”" for e in mc.evidence)
            line = Text(f"  • {quotes}  → {mc.correction}  (−{mc.penalty:g})")
            parts.append(line)

    if result.flags:
        names = _FLAG_NAMES["zh" if lang == "zh" else "en"]
        parts.append(Text(f"\n{t['flags']}: {', '.join(names.get(f, f) for f in result.flags)}", style="magenta"))
    if answer.strip():
        parts.append(Text(f"\n{t['answer']}:", style="bold"))
        parts.append(highlighted_answer(answer, result))
    return Group(*parts)


def console(*, stderr: bool = False) -> Console:
    """A console that colours and wraps to the width on a terminal, and never wraps in pipes."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=not stream.isatty())
