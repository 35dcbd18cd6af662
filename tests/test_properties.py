"""Properties: the score stays in [0, max_score]; stating a missing point never lowers it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from grader import Rubric, grade

# Sentences that each state one key point of tests/data/core/dropout-mini.yaml.
STATEMENTS = {
    "random-drop": ["Units are randomly dropped while training.", "训练时随机丢弃神经元。"],
    "regularize": ["It reduces overfitting.", "可以减轻过拟合。"],
    "inference-off": ["At inference dropout is turned off.", "推理时关闭。"],
    "scaling": ["Inverted dropout rescales during training.", "训练时按 1/(1-p) 放大。"],
}
NOISE = st.text(alphabet=st.sampled_from(list("ab dropout不是没有推理关闭随机，。,.!? notnever过拟合inference off")), max_size=80)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_score_is_within_bounds_for_any_text(mini: Rubric, text: str) -> None:
    res = grade(mini, text)
    assert 0 <= res.score <= res.max_score
    assert 0 <= res.percent <= 100
    for p in res.points:
        assert 0 <= p.credit <= 1
        for e in p.evidence:
            assert text[e.start : e.end] == e.text


@settings(max_examples=150, deadline=None)
@given(prefix=NOISE, data=st.data())
def test_stating_a_missing_point_never_lowers_the_score(mini: Rubric, prefix: str, data: st.DataObject) -> None:
    before = grade(mini, prefix)
    missing = [p.id for p in before.points if p.status != "met"]
    if not missing:
        return
    point = data.draw(st.sampled_from(missing))
    sentence = data.draw(st.sampled_from(STATEMENTS[point]))
    after = grade(mini, prefix + "。\n" + sentence)
    assert after.score >= before.score
    assert after.point(point).status == "met"
