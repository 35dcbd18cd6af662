"""Normalisation: one pass, offsets back into the original, tokens for the matcher."""

from __future__ import annotations

import pytest

from grader import grade, parse_rubric
from grader.normalize import detect_language, normalize, normalize_text, stem, tokenize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＤＲＯＰＯＵＴ", "dropout"),  # full width -> half width, case folded
        ("過擬合與正則化", "过拟合与正则化"),  # traditional -> simplified
        ("推理时，关闭；", "推理时,关闭;"),  # Chinese punctuation -> ASCII (。 stays: it always ends a sentence)
        ("L１ 正则", "l1 正则"),
        ("don’t", "don't"),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_offsets_point_into_the_original() -> None:
    raw = "訓練時ＤＲＯＰＯＵＴ隨機丟棄"
    norm = normalize(raw)
    start = norm.text.index("dropout")
    s, e = norm.span(start, start + len("dropout"))
    assert raw[s:e] == "ＤＲＯＰＯＵＴ"
    s, e = norm.span(norm.text.index("随机"), norm.text.index("随机") + 2)
    assert raw[s:e] == "隨機"


def test_offsets_survive_expanding_characters() -> None:
    raw = "ﬁne ① dropout"  # NFKC expands the ligature: "fine 1 dropout"
    norm = normalize(raw)
    assert norm.text == "fine 1 dropout"
    i = norm.text.index("dropout")
    s, e = norm.span(i, i + 7)
    assert raw[s:e] == "dropout"


def test_tokens_cjk_are_characters_and_fillers_dropped() -> None:
    toks = tokenize(normalize_text("防止了过拟合的 the dropout"))
    assert toks.text == ["防", "止", "过", "拟", "合", "dropout"]


def test_contractions_expand_to_not() -> None:
    toks = tokenize(normalize_text("Dropout isn't off, it doesnt matter"))
    assert toks.text.count("not") == 2
    assert "is" not in toks.text  # a filler word


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("drop", "dropped"),
        ("drop", "dropping"),
        ("scale", "scaling"),
        ("scale", "scaled"),
        ("random", "randomly"),
        ("weight", "weights"),
        ("bias", "biases"),
    ],
)
def test_stem_conflates_inflections(a: str, b: str) -> None:
    assert stem(a) == stem(b)


@pytest.mark.parametrize(("a", "b"), [("l1", "l12"), ("relu", "prelu"), ("sparse", "spare")])
def test_stem_keeps_distinct_words_apart(a: str, b: str) -> None:
    assert stem(a) != stem(b)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("训练时随机丢弃神经元，推理时关闭。", "zh"),
        ("Dropout randomly drops units during training.", "en"),
        ("用 warmup 防止 loss 爆炸", "mixed"),
        ("!!! ...", "unknown"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(normalize(text)) == lang


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("uses energyPassive transport", ["uses", "energy", "passive", "transport"]),  # a lost line break
        ("no energyOsmosis- water", ["no", "energy", "osmosis", "water"]),
        ("ReLU PyTorch iPhone LeakyReLU TensorFlow", ["relu", "pytorch", "iphone", "leakyrelu", "tensorflow"]),  # names stay whole
        ("CosineAnnealingLR 3rdTrial", ["cosineannealinglr", "3rdtrial"]),
    ],
)
def test_glued_words_are_split_at_a_capital(text: str, expected: list[str]) -> None:
    assert normalize(text).tokens.text == expected


def test_glued_words_still_match_as_written_and_offsets_hold() -> None:
    rubric = parse_rubric(
        """
id: glued
question: {en: q}
key_points:
  - {id: passive, weight: 1, statement: {en: s}, match: [passive transport]}
  - {id: osmosis, weight: 1, statement: {en: s}, match: [osmosis]}
  - {id: tf, weight: 1, statement: {en: s}, match: [tensorflow]}
""",
        source="t",
    )
    # "ﬁ" expands to "fi", so normalised offsets differ from the original ones after it
    answer = "ﬁxed notes: Active transport uses energyPassive transport needs none? no: energyOsmosis. I use tensorTensorFlow"
    result = grade(rubric, answer)
    assert [p.status for p in result.points] == ["met", "met", "met"]
    for point in result.points:
        for ev in point.evidence:
            assert answer[ev.start : ev.end] == ev.text
    assert result.points[0].evidence[0].text == "Passive transport"
    assert result.points[2].evidence[0].text == "TensorFlow"  # "tensor|TensorFlow" split; the name itself whole
