"""Which question to practise next: a small spaced-repetition rule over the history.

The rule (docs/practice.md repeats it for learners):

1. A *round* is one showing of a question; retries in the round share it. A round's *recall* is
   the percent of its first try, or 0 when a hint, a point's statement or the reference answer
   was shown before that first try (help means it was not recalled).
2. Each question has a *level* from 0 to 5, replayed from its rounds in order, starting at 0:
   recall >= 85 moves it up one level, recall < 60 sends it back to 0, anything between keeps it.
3. The level gives an *interval*: 10 minutes, 1 day, 3, 7, 21, 60 days. The interval shrinks
   by up to half with the weight of the key points missed in the last round's first try
   (``interval × (1 − missed_share / 2)``), so points missed recently come back sooner.
   A question is *due* at ``last round + interval``.
4. Next question: the most overdue due question (largest elapsed / interval); else a question
   never practised; else the one due soonest. The question just shown comes again only when it
   is the only one, and a question skipped in this session waits until nothing else is left.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from .history import Attempt

MINUTE = 60.0
DAY = 86_400.0
INTERVALS: tuple[float, ...] = (10 * MINUTE, 1 * DAY, 3 * DAY, 7 * DAY, 21 * DAY, 60 * DAY)
"""Interval by level, in seconds."""
MAX_LEVEL = len(INTERVALS) - 1
UP = 85.0
"""Recall (percent) at or above which a question moves up a level."""
RESET = 60.0
"""Recall below which a question goes back to level 0."""


@dataclass
class Round:
    """One showing of a question, summarised from its tries."""

    rubric_id: str
    ts: float
    """When the first try was graded."""
    recall: float
    """First-try percent, or 0 if help came before it."""
    first: float
    """First-try percent, help or not."""
    final: float
    """Percent of the last try."""
    tries: int
    missed_share: float
    """Weight share of the key points not met on the first try, in [0, 1]."""
    missed: list[str]
    """Ids of the key points not met on the first try."""


@dataclass
class QuestionState:
    """What the history says about one question."""

    rubric_id: str
    level: int = 0
    rounds: list[Round] = field(default_factory=list)
    last_ts: float | None = None
    """When it was last practised (None: never)."""
    interval: float = INTERVALS[0]
    """Seconds from the last round until it is due."""

    @property
    def due(self) -> float | None:
        """When it is due (None: never practised, so always available)."""
        return None if self.last_ts is None else self.last_ts + self.interval

    @property
    def best(self) -> float | None:
        """The best percent of any try."""
        return max((max(r.first, r.final) for r in self.rounds), default=None)

    @property
    def last(self) -> float | None:
        """The percent of the most recent try."""
        return self.rounds[-1].final if self.rounds else None


def rounds(attempts: Iterable[Attempt]) -> list[Round]:
    """Group attempts into rounds, oldest first."""
    groups: dict[tuple[str, str], list[Attempt]] = {}
    for a in attempts:
        key = (a.rubric_id, a.round_id or f"attempt-{a.id}-{a.ts}")
        groups.setdefault(key, []).append(a)
    out = []
    for tries in groups.values():
        tries.sort(key=lambda a: (a.try_no, a.ts))
        first, last = tries[0], tries[-1]
        helped = first.hints_used > 0 or first.saw_answer
        total = sum(p.weight for p in first.points)
        missed = [p for p in first.points if p.status != "met"]
        share = sum(p.weight * (1 - p.credit) for p in missed) / total if total else 0.0
        out.append(
            Round(
                rubric_id=first.rubric_id,
                ts=first.ts,
                recall=0.0 if helped else first.percent,
                first=first.percent,
                final=last.percent,
                tries=len(tries),
                missed_share=share,
                missed=[p.id for p in missed],
            )
        )
    out.sort(key=lambda r: r.ts)
    return out


def next_level(level: int, recall: float) -> int:
    """The level after a round with this recall."""
    if recall >= UP:
        return min(level + 1, MAX_LEVEL)
    if recall < RESET:
        return 0
    return level


def states(question_ids: Iterable[str], attempts: Iterable[Attempt]) -> dict[str, QuestionState]:
    """The state of each question, replayed from the history (questions not in the bank are ignored)."""
    out = {qid: QuestionState(qid) for qid in question_ids}
    for r in rounds(attempts):
        st = out.get(r.rubric_id)
        if st is None:
            continue
        st.rounds.append(r)
        st.level = next_level(st.level, r.recall)
        st.last_ts = r.ts
        st.interval = INTERVALS[st.level] * (1 - r.missed_share / 2)
    return out


def pick(
    question_ids: Sequence[str],
    attempts: Iterable[Attempt],
    *,
    now: float,
    shown: Sequence[str] = (),
    skipped: Collection[str] = (),
    rng: random.Random | None = None,
) -> str | None:
    """The id of the question to practise next (None if `question_ids` is empty).

    `shown` lists the questions already shown in this session, oldest first; `skipped` those
    shown and left unanswered, which wait until nothing else is left.
    """
    if not question_ids:
        return None
    rng = rng or random.Random()
    st = states(question_ids, attempts)
    last_shown = shown[-1] if shown else None
    pool = [q for q in question_ids if q != last_shown] or list(question_ids)
    pool = [q for q in pool if q not in skipped] or pool

    due = [q for q in pool if (d := st[q].due) is not None and d <= now]
    if due:
        return max(due, key=lambda q: ((now - (st[q].last_ts or now)) / st[q].interval, -st[q].level, q))
    fresh = [q for q in pool if q not in shown] or pool
    unseen = [q for q in fresh if st[q].last_ts is None]
    if unseen:
        return rng.choice(unseen)
    return min(fresh, key=lambda q: (st[q].due or now, q))
