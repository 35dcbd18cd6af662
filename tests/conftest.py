"""Shared fixtures: the core test rubrics, loaded from real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import Rubric, load_rubric

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def mini() -> Rubric:
    """A small dropout rubric that uses every kind of match rule."""
    return load_rubric(DATA / "core" / "dropout-mini.yaml")


@pytest.fixture(scope="session")
def count_rubric() -> Rubric:
    """An ASAP-style count-scored rubric."""
    return load_rubric(DATA / "core" / "count.yaml")
