"""Negation scope regressions (matcher_bugs.md, session 9), each with real negations nearby that still negate."""

from __future__ import annotations

import pytest

from grader import Rubric, grade, parse_rubric


def rubric(**points: str) -> Rubric:
    """A rubric with one point per keyword argument: id -> YAML `match:` value."""
    body = "".join(f"  - id: {pid}\n    statement: {{en: s}}\n    match: {match}\n" for pid, match in points.items())
    return parse_rubric(f"id: t\nquestion: {{en: q}}\nkey_points:\n{body}", source="inline")


def status(r: Rubric, answer: str, point: str) -> str:
    return {p.id: p.status for p in grade(r, answer).points}[point]


VERDICT = rubric(v="[错误, wrong]", s="[存储结构, storage structure]", c="[正确, correct]")
WORST_CASE = rubric(w="['(2n+1)/3']", e="[存入s1, push it onto s1]")
TRIALS = rubric(t="[third trial]", c="[control]")


# A denying predicate that contains the matched phrase ("是错误的" ⊃ "错误") does not deny it.
@pytest.mark.parametrize(
    ("answer", "point", "expected"),
    [
        ("这种叙述是错误的。", "v", "met"),
        ("该叙述是错误的", "v", "met"),
        ("这是错误的，顺序栈指的是存储结构", "v", "met"),
        ("This statement is wrong.", "v", "met"),
        # real denials still deny
        ("这种叙述不是错误的。", "v", "contradicted"),
        ("这种叙述不正确", "c", "contradicted"),  # 不 lies outside the phrase 正确
        ("说顺序栈是存储结构是错误的", "s", "contradicted"),  # the denial still reaches back
        ("It is not wrong.", "v", "contradicted"),
    ],
)
def test_denial_containing_the_phrase(answer: str, point: str, expected: str) -> None:
    assert status(VERDICT, answer, point) == expected


# A short verdict line ends its clause at the line break: it does not negate the explanation below.
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("不正确\n顺序栈指的是存储结构", "met"),
        ("不对\n顺序栈指的是存储结构", "met"),
        ("这种说法不正确\n顺序栈指的是存储结构", "met"),
        ("答：不是\n顺序栈指的是存储结构", "met"),
        ("Not true\nA sequential stack means the storage structure", "met"),
        ("No\nit refers to the storage structure", "met"),
        # a cue that wraps onto the next line still governs it
        ("顺序栈不是\n存储结构", "contradicted"),
        ("It is not true\nthat it refers to the storage structure", "contradicted"),
        ("it does not refer to the\nstorage structure", "contradicted"),
        # and a verdict followed by text on its own line still denies it
        ("不正确，顺序栈不是存储结构", "contradicted"),
    ],
)
def test_verdict_line_does_not_negate_the_next_line(answer: str, expected: str) -> None:
    assert status(VERDICT, answer, "s") == expected


# 不等 ("unequal": 不等概率, 不等式, 不等长) is a word, not a cue; 不等于 / 不等价 deny.
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("不等概率时平均移动(2n+1)/3个", "met"),
        ("不等 (2n+1)/3", "met"),
        ("由不等式可得 (2n+1)/3", "met"),
        ("平均移动次数不等于(2n+1)/3", "contradicted"),
        ("两者不等价，平均不是(2n+1)/3", "contradicted"),
        ("平均移动次数不是(2n+1)/3", "contradicted"),
    ],
)
def test_budeng_is_not_a_cue(answer: str, expected: str) -> None:
    assert status(WORST_CASE, answer, "w") == expected


# A negated condition ends at its conditional connective; the consequence is not negated.
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("s1没满就直接存入s1", "met"),
        ("s1未满时直接存入s1", "met"),
        ("s1未满则直接存入s1", "met"),
        ("s1不满的时候直接存入s1", "met"),
        ("s1不满的话直接存入s1", "met"),
        ("if s1 is not full then push it onto s1", "met"),
        # the consequence's own negation, and negations that are not conditions, still deny
        ("s1满了就不能存入s1", "contradicted"),
        ("s1满时不能存入s1", "contradicted"),
        ("s1满了则不存入s1", "contradicted"),
        ("不一定就存入s1", "contradicted"),  # an adverb before 就 keeps the scope
        ("不是满了就存入s1", "contradicted"),  # 不是 denies the whole rule, not a condition
        ("if s1 is full do not push it onto s1", "contradicted"),
    ],
)
def test_negated_condition_does_not_negate_the_consequence(answer: str, expected: str) -> None:
    assert status(WORST_CASE, answer, "e") == expected


@pytest.mark.parametrize(
    ("match", "answer"),
    [
        ("[统计的均值方差]", "推理时 BN 也不用训练时统计的均值方差"),  # 训练时 is a time, not a condition
        ("[更新]", "这种方法不需要实时更新"),  # 实时 is a word
        ("[做正则]", "一般不对 bias 做正则"),  # 正则 is a word
        ("[设置好最大储存空间]", "不需要提前就设置好最大储存空间"),  # 提前就: "already", not "then"
    ],
)
def test_words_holding_a_connective_keep_the_scope(match: str, answer: str) -> None:
    assert status(rubric(p=match), answer, "p") == "contradicted"


# The determiner "no" governs its own noun, not a fresh noun phrase after and/or + article.
@pytest.mark.parametrize(
    ("answer", "point", "expected"),
    [
        ("Add a control with no weight added and a third trial.", "t", "met"),
        ("They used no control and a third trial would help.", "t", "met"),
        ("They used no control and another third trial would help.", "t", "met"),
        ("no weights or the third trial", "t", "met"),
        # the first noun phrase stays negated, and so does a coordinated bare or negated noun
        ("They used no control and a third trial would help.", "c", "contradicted"),
        ("no weight and no third trial", "t", "contradicted"),
        ("no weight and third trial", "t", "contradicted"),
        ("They did not add a weight and a third trial", "t", "contradicted"),  # only the determiner "no"
    ],
)
def test_no_does_not_govern_a_fresh_noun_phrase(answer: str, point: str, expected: str) -> None:
    assert status(TRIALS, answer, point) == expected
