"""`grader practice`: the session logic, apart from terminal input so it can be driven by tests.

`PracticeSession` holds the state (the question, the round's tries and the help given) and turns
each line the learner submits, a command or an answer, into a `Step` of renderables to show.
`run()` loops it over any `AnswerSource`; `TerminalInput` is the prompt_toolkit one.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .errors import InputError
from .grade import feedback_language, grade
from .history import Attempt, History, HistoryError
from .normalize import detect_language, normalize
from .render import render_result
from .result import Evidence, GradeResult
from .rubric import Rubric

if TYPE_CHECKING:
    from .judge import JudgeConfig
from .scheduler import pick, states

GradeFn = Callable[[Rubric, str, "str | None"], GradeResult]
"""How an answer is graded: (rubric, answer, feedback language or None) -> result."""


def matcher_grade(rubric: Rubric, answer: str, lang: str | None) -> GradeResult:
    """Grade with the offline matcher."""
    return grade(rubric, answer, lang=lang)


Command = Literal["hint", "answer", "skip", "quit", "help"]

COMMANDS: dict[str, Command] = {
    "hint": "hint",
    "h": "hint",
    "提示": "hint",
    "answer": "answer",
    "答案": "answer",
    "参考答案": "answer",
    "skip": "skip",
    "next": "skip",
    "s": "skip",
    "跳过": "skip",
    "下一题": "skip",
    "quit": "quit",
    "exit": "quit",
    "q": "quit",
    "退出": "quit",
    "help": "help",
    "?": "help",
    "？": "help",
    "帮助": "help",
}


def parse_command(text: str) -> Command | None:
    """The command a line stands for (``hint``, ``:hint``, ``/提示`` …), or None for an answer."""
    word = text.strip()
    if "\n" in word:
        return None
    return COMMANDS.get(word.lstrip(":/：").strip().lower())


_T = {
    "en": {
        "question": "Question",
        "new": "new",
        "last": "last time {last:g}% · best {best:g}% · level {level}/5",
        "usage": "Type your answer; finish with an empty line (or Ctrl-D). Commands: hint · answer · skip · quit · help",
        "retry": "Retry (↑ brings back your answer to edit), or: hint · answer · Enter for the next question · quit",
        "hint": "Hint {n}/{total}",
        "point": "A key point you are missing",
        "no_more": "No more hints: type `answer` to see the reference answer.",
        "all_met": "You have every key point already. Press Enter for the next question.",
        "reference": "Reference answer",
        "no_reference": "This question has no reference answer; here are its key points:",
        "better": "▲ +{d:g} since your last try",
        "worse": "▼ {d:g} since your last try",
        "same": "= same score as your last try",
        "full": "Full marks! Press Enter for the next question (or quit).",
        "help": (
            "Write your answer in Chinese, English or both. An empty line (or Ctrl-D) sends it.\n"
            "After the score you may retry: missing points show as hints first.\n"
            "  hint    one more hint (then the statement of a missing point)\n"
            "  answer  show the reference answer\n"
            "  skip    next question (also: next, Enter after a score)\n"
            "  quit    end the session (also: Ctrl-D on an empty answer)"
        ),
        "empty": "Nothing typed yet. Write an answer, or type `hint`, `skip` or `quit`.",
        "saved_warn": "⚠ {msg} Your attempts are kept in memory and will be written when possible.",
        "summary": "Session summary",
        "col_q": "question",
        "col_first": "first try",
        "col_best": "best",
        "col_tries": "tries",
        "none": "No answers this time. See you soon!",
        "saved": "Saved to {path}. `grader progress` shows your trend.",
        "spilled": "⚠ The history was not writable; {n} attempts were kept in {path} and will be imported next time.",
        "done": "You have been through every question for now. Come back later: the scheduler will bring back what you missed.",
    },
    "zh": {
        "question": "题目",
        "new": "新题",
        "last": "上次 {last:g}% · 最好 {best:g}% · 熟练度 {level}/5",
        "usage": "输入你的回答，空一行（或 Ctrl-D）提交。命令：hint 提示 · answer 答案 · skip 跳过 · quit 退出 · help 帮助",
        "retry": "再答一次（按 ↑ 取回刚才的回答修改），或：hint 提示 · answer 答案 · 直接回车进入下一题 · quit 退出",
        "hint": "提示 {n}/{total}",
        "point": "你遗漏的一个要点",
        "no_more": "没有更多提示了：输入 answer 查看参考答案。",
        "all_met": "所有要点都答到了。回车进入下一题。",
        "reference": "参考答案",
        "no_reference": "这道题没有参考答案，以下是它的要点：",
        "better": "▲ 比上次提高 {d:g} 分",
        "worse": "▼ 比上次降低 {d:g} 分",
        "same": "= 与上次得分相同",
        "full": "满分！回车进入下一题（或 quit 退出）。",
        "help": (
            "可以用中文、英文或中英混合作答。空一行（或 Ctrl-D）提交。\n"
            "评分后可以再答一次：遗漏的要点先以提示出现。\n"
            "  hint / 提示    再给一个提示（之后显示遗漏要点的内容）\n"
            "  answer / 答案  显示参考答案\n"
            "  skip / 跳过    下一题（评分后直接回车也可以）\n"
            "  quit / 退出    结束练习（空回答时按 Ctrl-D 也可以）"
        ),
        "empty": "还没有输入。请作答，或输入 hint、skip、quit。",
        "saved_warn": "⚠ {msg} 你的作答暂存在内存中，稍后会写入。",
        "summary": "本次练习小结",
        "col_q": "题目",
        "col_first": "首次得分",
        "col_best": "最好",
        "col_tries": "次数",
        "none": "这次没有作答。下次见！",
        "saved": "已保存到 {path}。运行 `grader progress` 查看进步趋势。",
        "spilled": "⚠ 练习记录暂时无法写入；{n} 次作答已保存在 {path}，下次会自动导入。",
        "done": "目前所有题目都练过了。过段时间再来：答错的要点会按间隔重复再出现。",
    },
}


def outermost(evidence: list[Evidence]) -> list[Evidence]:
    """Evidence without spans that lie inside another (several rules often quote nested words)."""
    spans = sorted(evidence, key=lambda e: (e.start, -e.end))
    out: list[Evidence] = []
    for e in spans:
        if out and e.end <= out[-1].end:
            continue
        out.append(e)
    return out


def locale_lang() -> str:
    """zh when the user's locale is Chinese, else en."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


@dataclass
class RoundState:
    """One showing of a question."""

    rubric: Rubric
    round_id: str
    results: list[GradeResult] = field(default_factory=list)
    hinted: set[str] = field(default_factory=set)
    """Points whose hint the learner has seen (asked for, or shown after a try)."""
    revealed: set[str] = field(default_factory=set)
    """Points whose statement the learner has seen."""
    helps: int = 0
    """Hints and statements asked for with `hint`."""
    saw_answer: bool = False


@dataclass
class Step:
    """What one submitted line produced."""

    kind: Literal["graded", "hint", "answer", "skip", "quit", "help", "empty"]
    output: list[RenderableType] = field(default_factory=list)
    next_question: bool = False
    """The session moved on: show `PracticeSession.question_view()` next."""


class PracticeSession:
    """An interactive practice session over some questions of a bank."""

    def __init__(
        self,
        bank: Mapping[str, Rubric],
        question_ids: Sequence[str],
        history: History | None = None,
        *,
        lang: str | None = None,
        grade_fn: GradeFn = matcher_grade,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if not question_ids:
            raise InputError("no questions to practise (check --tag and --bank; `grader list` shows the questions)")
        self.bank = bank
        self.question_ids = list(question_ids)
        self.history = history
        self.lang = lang
        """The learner's chosen language (None: follow their answers)."""
        self.ui_lang = lang or locale_lang()
        self.grade_fn = grade_fn
        self.clock = clock
        self.rng = rng or random.Random()
        self.round: RoundState | None = None
        self.rounds: list[RoundState] = []
        self.shown: list[str] = []
        self.warned = False
        self._attempts: list[Attempt] | None = None

    # -- helpers

    def t(self, key: str, **kw: object) -> str:
        """A UI string in the learner's language."""
        return _T["zh" if self.ui_lang == "zh" else "en"][key].format(**kw)

    def _all_attempts(self) -> list[Attempt]:
        if self._attempts is None:
            self._attempts = []
            if self.history is not None:
                try:
                    self._attempts = self.history.attempts()
                except HistoryError:
                    self._attempts = []
        return self._attempts

    # -- questions

    def next_question(self) -> Rubric | None:
        """Pick and open the next question (by the scheduler)."""
        answered = {r.rubric.id for r in self.rounds if r.results}
        skipped = {r.rubric.id for r in self.rounds if not r.results} - answered
        qid = pick(self.question_ids, self._all_attempts(), now=self.clock(), shown=self.shown, skipped=skipped, rng=self.rng)
        if qid is None:
            return None
        return self.open_question(qid)

    def open_question(self, qid: str) -> Rubric:
        """Start a round on question `qid`."""
        rubric = self.bank[qid]
        self.round = RoundState(rubric=rubric, round_id=uuid.uuid4().hex[:16])
        self.rounds.append(self.round)
        self.shown.append(qid)
        return rubric

    def question_view(self, *, usage: bool = True) -> RenderableType:
        """The current question, with where the learner stands on it (and, with `usage`, how to answer)."""
        assert self.round is not None
        rubric = self.round.rubric
        st = states([rubric.id], self._all_attempts())[rubric.id]
        if st.rounds and st.best is not None and st.last is not None:
            status = self.t("last", last=st.last, best=st.best, level=st.level)
        else:
            status = self.t("new")
        n = len(self.shown)
        tags = f" · {', '.join(rubric.tags)}" if rubric.tags else ""
        title = f"{self.t('question')} {n} · {rubric.id}{tags}"
        body = Text(rubric.question.get(self.lang or self.ui_lang), style="bold")
        panel = Panel(body, title=title, title_align="left", subtitle=status, subtitle_align="right", border_style="cyan")
        return Group(panel, Text(self.t("usage"), style="dim")) if usage else panel

    def prompt(self) -> str:
        """The input prompt: a fresh answer or a retry."""
        assert self.round is not None
        if self.round.results:
            return "重答> " if self.ui_lang == "zh" else "retry> "
        return "回答> " if self.ui_lang == "zh" else "answer> "

    # -- input

    def submit(self, text: str) -> Step:
        """Handle one submitted input: a command, an answer, or an empty line."""
        assert self.round is not None, "call next_question() first"
        command = parse_command(text)
        if command == "quit":
            return Step("quit")
        if command == "help":
            return Step("help", [Text(self.t("help"))])
        if command == "skip":
            return Step("skip", next_question=True)
        if command == "hint":
            return self._hint()
        if command == "answer":
            return self._answer()
        if not text.strip():
            if self.round.results:
                return Step("skip", next_question=True)
            return Step("empty", [Text(self.t("empty"), style="yellow")])
        return self._grade(text.strip("\n"))

    def _unmet(self) -> list[str]:
        assert self.round is not None
        if self.round.results:
            return [m.id for m in self.round.results[-1].missing]
        return [kp.id for kp in self.round.rubric.key_points]

    def _hint(self) -> Step:
        rnd = self.round
        assert rnd is not None
        lang = self._feedback_lang()
        unmet = self._unmet()
        if not unmet:
            return Step("hint", [Text(self.t("all_met"), style="green")])
        with_hint = [pid for pid in unmet if rnd.rubric.point(pid).hint is not None]
        for pid in with_hint:
            if pid not in rnd.hinted:
                rnd.hinted.add(pid)
                rnd.helps += 1
                n = len([p for p in with_hint if p in rnd.hinted])
                kp = rnd.rubric.point(pid)
                assert kp.hint is not None
                line = Text(f"💡 {self.t('hint', n=n, total=len(with_hint))}: ", style="bold yellow")
                line.append(kp.hint.get(lang), style="yellow")
                return Step("hint", [line])
        for pid in unmet:
            if pid not in rnd.revealed:
                rnd.revealed.add(pid)
                rnd.helps += 1
                line = Text(f"🔑 {self.t('point')}: ", style="bold magenta")
                line.append(rnd.rubric.point(pid).statement.get(lang))
                return Step("hint", [line])
        return Step("hint", [Text(self.t("no_more"), style="dim")])

    def _answer(self) -> Step:
        rnd = self.round
        assert rnd is not None
        rnd.saw_answer = True
        lang = self._feedback_lang()
        ref = rnd.rubric.reference_answer
        if ref is not None:
            body: RenderableType = Text(ref.get(lang))
        else:
            body = Text("\n".join(f"• {kp.statement.get(lang)}" for kp in rnd.rubric.key_points))
            body = Group(Text(self.t("no_reference"), style="dim"), body)
        return Step("answer", [Panel(body, title=self.t("reference"), title_align="left", border_style="green")])

    def _feedback_lang(self) -> str:
        assert self.round is not None
        if self.lang:
            return self.lang
        if self.round.results:
            return self.round.results[-1].feedback_lang
        return self.ui_lang

    def _grade(self, answer: str) -> Step:
        rnd = self.round
        assert rnd is not None
        result = self.grade_fn(rnd.rubric, answer, self.lang)
        if self.lang is None:
            self.ui_lang = result.feedback_lang
        previous = rnd.results[-1] if rnd.results else None
        rnd.results.append(result)
        out: list[RenderableType] = []
        attempt = Attempt.from_result(
            result,
            answer,
            round_id=rnd.round_id,
            try_no=len(rnd.results),
            hints_used=rnd.helps,
            saw_answer=rnd.saw_answer,
            ts=self.clock(),
        )
        self._all_attempts().append(attempt)
        if self.history is not None:
            try:
                self.history.record(attempt)
            except HistoryError as exc:
                if not self.warned:
                    out.append(Text(self.t("saved_warn", msg=str(exc)), style="yellow"))
                    self.warned = True
        # Hints-first: missing points show their hint; a point whose statement the learner
        # already asked for shows the statement instead.
        shown = result.model_copy(
            update={
                "missing": [m.model_copy(update={"hint": None}) if m.id in rnd.revealed else m for m in result.missing],
                "points": [p.model_copy(update={"evidence": outermost(p.evidence)}) for p in result.points],
            }
        )
        out.insert(0, render_result(shown, rnd.rubric, answer, show_statements=False))
        rnd.hinted.update(m.id for m in result.missing if m.hint)
        if previous is not None:
            delta = round(result.score - previous.score, 1)
            if delta > 0:
                out.append(Text(self.t("better", d=delta), style="bold green"))
            elif delta < 0:
                out.append(Text(self.t("worse", d=delta), style="bold red"))
            else:
                out.append(Text(self.t("same"), style="dim"))
        if result.score >= result.max_score:
            out.append(Text(self.t("full"), style="bold green"))
        else:
            out.append(Text(self.t("retry"), style="dim"))
        return Step("graded", out)

    # -- the end

    def summary(self) -> RenderableType:
        """A table of this session's rounds (questions answered at least once)."""
        answered = [r for r in self.rounds if r.results]
        if not answered:
            return Text(self.t("none"), style="dim")
        table = Table(title=self.t("summary"), title_justify="left", show_edge=False)
        table.add_column(self.t("col_q"))
        table.add_column(self.t("col_first"), justify="right")
        table.add_column(self.t("col_best"), justify="right")
        table.add_column(self.t("col_tries"), justify="right")
        for r in answered:
            first = r.results[0].percent
            best = max(x.percent for x in r.results)
            style = "green" if best >= 85 else "yellow" if best >= 60 else "red"
            table.add_row(r.rubric.id, f"{first:g}%", Text(f"{best:g}%", style=style), str(len(r.results)))
        return table


class AnswerSource(Protocol):
    """Where the learner's inputs come from."""

    def read(self, prompt: str) -> str | None:
        """One submitted input (an answer or a command); None at end of input."""


def run(session: PracticeSession, source: AnswerSource, console: Console) -> None:
    """Loop the session until the learner quits or the input ends."""
    if session.next_question() is None:
        return
    console.print(session.question_view())
    while True:
        try:
            text = source.read(session.prompt())
        except KeyboardInterrupt:
            text = None
        if text is None:
            break
        step = session.submit(text)
        for r in step.output:
            console.print(r)
        if step.kind == "quit":
            break
        if step.next_question:
            if session.next_question() is None:
                console.print(Text(session.t("done"), style="dim"))
                break
            console.print()
            console.print(session.question_view())
    console.print()
    console.print(session.summary())


def answer_once(session: PracticeSession, answer: str, console: Console, *, question: str | None = None) -> GradeResult:
    """The scriptable mode: grade one answer (to `question`, else the scheduler's pick) and print it."""
    if not answer.strip():
        raise InputError("the answer is empty")
    rubric = session.open_question(question) if question else session.next_question()
    assert rubric is not None
    if session.lang is None:
        # The answer is known before anything is shown: show the question in the language the
        # feedback will use (the answer's; for an answer in neither, the question's), not the locale's.
        session.ui_lang = feedback_language(rubric, detect_language(normalize(answer)))
    console.print(session.question_view(usage=False))  # no "Type your answer" prompt: the answer came from stdin
    step = session.submit(answer)
    rnd = session.round
    assert rnd is not None and rnd.results
    result = rnd.results[-1]
    console.print(render_result(result, rubric, answer.strip("\n"), show_statements=True))
    for r in step.output[1:]:
        if r.plain.startswith("⚠") if isinstance(r, Text) else False:  # a warning about the history
            console.print(r)
    return result


# --------------------------------------------------------------------------- terminal input


class TerminalInput:
    """Multi-line input with line editing (prompt_toolkit): Enter on an empty line or Ctrl-D sends.

    A command typed alone on the first line (``hint``, ``skip`` …) is sent by Enter at once.
    Ctrl-D on an empty answer ends the session; pasted text keeps its blank lines.
    """

    def __init__(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

        class AnswerHistory(InMemoryHistory):
            # Only answers are worth recalling with ↑ (to edit and resend), not commands.
            def append_string(self, string: str) -> None:
                if string.strip() and parse_command(string) is None:
                    super().append_string(string)

        kb = KeyBindings()

        @kb.add("enter")
        def _enter(event: KeyPressEvent) -> None:
            buf = event.current_buffer
            doc = buf.document
            text = buf.text
            at_end = doc.is_cursor_at_the_end
            if not text.strip() or parse_command(text) is not None or (at_end and text.endswith("\n")):
                buf.text = text.rstrip("\n")
                buf.validate_and_handle()
            else:
                buf.insert_text("\n")

        @kb.add("c-d")
        def _eof(event: KeyPressEvent) -> None:
            buf = event.current_buffer
            if buf.text.strip():
                buf.validate_and_handle()
            else:
                event.app.exit(exception=EOFError)

        self._session: PromptSession[str] = PromptSession(multiline=True, key_bindings=kb, history=AnswerHistory())

    def read(self, prompt: str) -> str | None:
        """One input; None on Ctrl-D (empty) or Ctrl-C."""
        try:
            text = self._session.prompt(prompt, prompt_continuation=lambda width, line_no, wrap: " " * (width - 2) + "┆ ")
        except (EOFError, KeyboardInterrupt):
            return None
        return text


# --------------------------------------------------------------------------- the command


def judge_grade_fn(config: JudgeConfig) -> GradeFn:
    """The grade function for ``--judge``: the matcher plus the LLM judge configured by `config`."""
    from .judge import grade_with_judge

    def graded(rubric: Rubric, answer: str, lang: str | None) -> GradeResult:
        return grade_with_judge(rubric, answer, lang=lang, config=config)

    return graded


def select_questions(bank: Mapping[str, Rubric], tags: Sequence[str] = ()) -> list[str]:
    """Ids of the bank's questions that carry any of `tags` (all questions when none are given).

    Raises:
        InputError: no question has those tags (the message lists the tags there are).
    """
    ids = list(bank)
    if not tags:
        return ids
    wanted = set(tags)
    chosen = [qid for qid in ids if wanted & set(bank[qid].tags)]
    if not chosen:
        known = sorted({t for qid in ids for t in bank[qid].tags})
        raise InputError(f"no question has the tag {', '.join(sorted(wanted))}; tags in this bank: {', '.join(known) or '(none)'}")
    return chosen


def practise(
    bank: Mapping[str, Rubric],
    console: Console,
    *,
    tags: Sequence[str] = (),
    question: str | None = None,
    lang: str | None = None,
    db: str | os.PathLike[str] | None = None,
    judge: JudgeConfig | None = None,
    interactive: bool | None = None,
    answer_text: str | None = None,
) -> GradeResult | None:
    """Run `grader practice`: a session on a terminal, else grade the one answer in `answer_text`.

    Returns the result in the one-answer mode.

    Raises:
        InputError: bad options (unknown tag, empty answer).
        HistoryError: the history database cannot be opened.
    """
    from .history import open_history

    ids = [question] if question else select_questions(bank, tags)
    if question:
        bank[question]  # an unknown id fails here, with suggestions
    grade_fn = judge_grade_fn(judge) if judge is not None else matcher_grade
    history = open_history(db)
    if history.backup is not None:
        console.print(Text(f"The practice history was upgraded; a copy of the old one is at {history.backup}", style="dim"))
    if history.imported:
        console.print(Text(f"Imported {history.imported} attempts saved while the history was locked.", style="dim"))
    session = PracticeSession(bank, ids, history, lang=lang, grade_fn=grade_fn)
    result = None
    try:
        if interactive is None:
            import sys

            interactive = sys.stdin.isatty()
        if interactive:
            run(session, TerminalInput(), console)
        else:
            result = answer_once(session, answer_text or "", console, question=question)
    finally:
        unsaved = len(history.pending)
        spill = history.close()
        answered = sum(len(r.results) for r in session.rounds)
        if spill is not None:
            console.print(Text(session.t("spilled", n=unsaved, path=spill), style="yellow"))
        elif answered and interactive:
            console.print(Text(session.t("saved", path=history.path), style="dim"))
    return result
