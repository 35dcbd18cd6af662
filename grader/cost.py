"""Token usage, prices, dry-run estimates and the spending cap of the LLM judge.

Prices are US dollars per million tokens. The built-in table covers a few hosted models; a
JSON file named by ``GRADER_PRICES`` (``{"model": {"input": 0.15, "output": 0.6}}``) adds or
overrides entries. A model with no price costs 0 and is reported as unpriced.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import InputError

PRICES_ENV = "GRADER_PRICES"

DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
    "gpt-4o": {"input": 2.50, "output": 10.00},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
    "gpt-4.1-nano": {"input": 0.10, "output": 0.40},
    "gpt-4.1": {"input": 2.00, "output": 8.00},
}


def load_prices(path: str | Path | None = None) -> dict[str, dict[str, float]]:
    """The price table: built-in entries updated from `path` (or $GRADER_PRICES).

    Raises:
        InputError: the file is unreadable or not a mapping of model -> {input, output}.
    """
    prices = {k: dict(v) for k, v in DEFAULT_PRICES.items()}
    path = path or os.environ.get(PRICES_ENV)
    if not path:
        return prices
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the price table ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the price table must map model names to {{input, output}}")
    for model, entry in data.items():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), int | float) for k in ("input", "output")):
            raise InputError(f"{path}: {model}: needs numeric 'input' and 'output' (USD per million tokens)")
        prices[str(model)] = {"input": float(entry["input"]), "output": float(entry["output"])}
    return prices


def price_of(model: str, prices: dict[str, dict[str, float]]) -> dict[str, float] | None:
    """The model's price entry; a dated variant (gpt-4o-mini-2024-07-18) falls back to its base name."""
    if model in prices:
        return prices[model]
    for name in sorted(prices, key=len, reverse=True):
        if model.startswith(name + "-"):
            return prices[name]
    return None


def cost_of(model: str, prompt_tokens: int, completion_tokens: int, prices: dict[str, dict[str, float]]) -> float:
    """Dollars for this many tokens (0 for an unpriced model)."""
    p = price_of(model, prices)
    if p is None:
        return 0.0
    return (prompt_tokens * p["input"] + completion_tokens * p["output"]) / 1_000_000


_CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: ~1 token per CJK character, ~4 characters per token otherwise.

    Good to about ±25% for BPE tokenizers of current chat models; used for --dry-run and budgets.
    """
    cjk = len(_CJK_RE.findall(text))
    other = len(text) - cjk
    return cjk + math.ceil(other / 4)


@dataclass
class Usage:
    """What the judge spent in one run (or on one answer)."""

    requests: int = 0
    """HTTP requests sent, retries included."""
    cached: int = 0
    """Replies served from the cache."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    """Dollars, from the price table."""
    failures: int = 0
    """Answers (or samples) the judge could not score."""
    skipped_budget: int = 0
    """Calls not made because --max-cost was reached."""

    def add(self, other: Usage) -> None:
        """Add `other` into this one."""
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def as_dict(self) -> dict[str, int | float]:
        """Plain numbers, cost rounded to 1e-6 dollars."""
        d = asdict(self)
        d["cost"] = round(self.cost, 6)
        return d

    def summary(self, *, priced: bool = True) -> str:
        """One line for the terminal."""
        cost = f"${self.cost:.4f}" if priced else "cost unknown (no price for this model)"
        line = (
            f"judge: {self.requests} requests, {self.cached} cached, "
            f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens, {cost}"
        )
        if self.failures:
            line += f", {self.failures} unscored"
        if self.skipped_budget:
            line += f", {self.skipped_budget} skipped (max cost reached)"
        return line


class Budget:
    """Stops new calls once `max_cost` dollars are spent (work already finished is kept).

    A call is allowed only if what is spent plus what is reserved by calls in flight plus this
    call's estimate stays within the cap, so concurrency cannot overshoot by much.
    """

    def __init__(self, max_cost: float | None) -> None:
        self.max_cost = max_cost
        self.spent = 0.0
        self.reserved = 0.0

    def reserve(self, estimate: float) -> bool:
        """Reserve `estimate` dollars for a call; False when that would pass the cap."""
        if self.max_cost is None:
            return True
        if self.spent + self.reserved + estimate > self.max_cost:
            return False
        self.reserved += estimate
        return True

    def settle(self, estimate: float, actual: float) -> None:
        """Replace a reservation by what the call really cost."""
        if self.max_cost is not None:
            self.reserved = max(0.0, self.reserved - estimate)
        self.spent += actual
