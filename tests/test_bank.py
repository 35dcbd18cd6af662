"""The built-in bank: every rubric loads, and grades its own reference and examples as declared."""

from __future__ import annotations

import pytest

from grader import Rubric, builtin_bank_path, grade, load_bank

BANK = load_bank(builtin_bank_path())
IDS = list(BANK)
EXPECTED_IDS = {
    "l1-l2-regularization", "overfitting", "dropout", "activation-functions", "class-imbalance", "lr-schedules", "warmup",
    "model-compression", "local-minima", "low-resource-augmentation", "adam-lr-decay", "exploding-gradients",
    "weight-init", "normalization", "training-tricks",
}  # fmt: skip


def _examples() -> list[tuple[str, int]]:
    return [(rid, i) for rid in IDS for i in range(len(BANK[rid].examples))]


def test_bank_covers_the_seed_questions() -> None:
    assert set(IDS) <= EXPECTED_IDS
    for rid in IDS:
        r = BANK[rid]
        assert r.languages == {"zh", "en"}, rid
        assert 4 <= len(r.key_points) <= 8, rid
        assert len(r.examples) >= 10, rid


@pytest.mark.parametrize("rid", IDS)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_reference_answer_scores_high(rid: str, lang: str) -> None:
    r: Rubric = BANK[rid]
    assert r.reference_answer is not None
    res = grade(r, r.reference_answer.get(lang))
    assert res.percent >= r.reference_min, [(p.id, p.status) for p in res.points]
    assert res.misconceptions == []


@pytest.mark.parametrize(("rid", "index"), _examples())
def test_example_lands_in_its_range(rid: str, index: int) -> None:
    r = BANK[rid]
    ex = r.examples[index]
    res = grade(r, ex.answer)
    breakdown = {p.id: p.status for p in res.points} | {"misconceptions": [m.id for m in res.misconceptions]}
    low, high = ex.score
    assert low <= res.score <= high, f"{ex.kind}: {res.score} not in [{low}, {high}] {breakdown}"
    for pid in ex.met:
        assert res.point(pid).status == "met", breakdown
    for pid in ex.not_met:
        assert res.point(pid).status != "met", breakdown
    if ex.misconceptions is not None:
        assert sorted(m.id for m in res.misconceptions) == sorted(ex.misconceptions), breakdown
