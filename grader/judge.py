"""The optional LLM judge: grounded per-point verdicts from any OpenAI-compatible endpoint.

One request per answer covers the key points asked (see combine.py for the policies) and the
misconceptions. Replies use structured output (a JSON schema built from pydantic models, every
list bounded), falling back to JSON mode and then to tolerant parsing for servers without it; a
reply that fails validation is re-asked once with the error fed back. Quotes are grounded in the
answer, scores are computed in code, failures become unscored points, replies are cached in
sqlite, and spending is counted and capped (cost.py).

The `openai` package is imported only when a request is about to be sent, so `grader grade`
without --judge starts as fast as before. The API key is read from ``OPENAI_API_KEY`` by the
client and is never stored: not in the config, the cache, the results or the logs.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .cache import ReplyCache, cache_key, default_cache_dir
from .combine import JudgedMisconception, JudgedPoint, Vote, combine, vote
from .cost import Budget, Usage, cost_of, estimate_tokens, load_prices, price_of
from .errors import GraderError
from .grade import assemble, feedback_language
from .grounding import Grounder
from .injection import find_injections
from .matcher import match_misconceptions, match_points
from .normalize import Normalized, detect_language, normalize, normalize_text
from .result import FLAG_INJECTION, FLAG_TRUNCATED, GradeResult, MisconceptionHit, PointResult
from .rubric import Rubric

Policy = Literal["review", "full"]
Mode = Literal["json_schema", "json_object", "text"]
_MODES: tuple[Mode, ...] = ("json_schema", "json_object", "text")

MODEL_ENV = "GRADER_MODEL"
BASE_URL_ENV = "OPENAI_BASE_URL"
KEY_ENV = "OPENAI_API_KEY"
POLICY_ENV = "GRADER_JUDGE_POLICY"


class PromptError(GraderError):
    """A prompt file is missing or uses a variable nobody supplies."""


class JudgeError(GraderError):
    """The judge cannot run at all (no model configured, bad options)."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class JudgeConfig:
    """How to reach the judge and how to use it. Holds no secret: the key comes from the environment."""

    model: str
    """Model name as the endpoint knows it (--model / $GRADER_MODEL)."""
    base_url: str | None = None
    """OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 (--base-url / $OPENAI_BASE_URL); None = OpenAI."""
    policy: Policy = "review"
    """review: judge only what the matcher did not settle; full: judge every point."""
    samples: int = 1
    """Verdicts per answer, voted per point (self-consistency)."""
    temperature: float | None = None
    """Sampling temperature; default 0 for one sample, 0.7 for several."""
    agreement_threshold: float = 0.67
    """Points whose vote agreement is below this need review."""
    concurrency: int = 8
    """Requests in flight at once (batch)."""
    timeout: float = 60.0
    """Seconds per request."""
    retries: int = 3
    """Extra attempts after a failed request (429, 5xx, reset, timeout, unreadable reply)."""
    backoff: float = 0.5
    """First backoff in seconds; doubles per attempt, with jitter, capped at `max_backoff`."""
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    """Longest Retry-After the judge will honour before giving up on that request."""
    response_format: Mode = "json_schema"
    """Structured-output mode to try first; it steps down when the server rejects it."""
    max_answer_chars: int = 6000
    """Longer answers are sent truncated (and flagged)."""
    cache: bool = True
    cache_dir: Path | None = None
    """Where judge.sqlite3 lives (--cache-dir / $GRADER_CACHE_DIR; default: the user cache folder)."""
    max_cost: float | None = None
    """Dollars; no new calls once reached (--max-cost)."""
    prices: Path | None = None
    """A JSON price table to merge over the built-in one ($GRADER_PRICES)."""

    def __post_init__(self) -> None:
        if not self.model:
            raise JudgeError(f"no judge model: pass --model or set {MODEL_ENV}")
        if self.policy not in ("review", "full"):
            raise JudgeError(f"unknown judge policy {self.policy!r} (review or full)")
        if not 1 <= self.samples <= 15:
            raise JudgeError("--samples must be between 1 and 15")
        if self.concurrency < 1:
            raise JudgeError("--concurrency must be at least 1")
        if self.max_cost is not None and self.max_cost < 0:
            raise JudgeError("--max-cost must be >= 0")

    @classmethod
    def from_env(cls, **overrides: Any) -> JudgeConfig:
        """A config from $GRADER_MODEL, $OPENAI_BASE_URL, $GRADER_JUDGE_POLICY and $GRADER_CACHE_DIR; `overrides` win (None = unset)."""
        values: dict[str, Any] = {
            "model": os.environ.get(MODEL_ENV, ""),
            "base_url": os.environ.get(BASE_URL_ENV) or None,
        }
        if os.environ.get(POLICY_ENV):
            values["policy"] = os.environ[POLICY_ENV]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def sampling_temperature(self) -> float:
        """The temperature actually sent."""
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 0.7


# --------------------------------------------------------------------------- prompts


def prompts_dir() -> Path:
    """The prompt files: inside the installed package, or the checkout's prompts/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "prompts", here.parent / "prompts"):
        if (candidate / "judge_system.md").is_file():
            return candidate
    raise PromptError("the judge prompts are missing from this installation (prompts/judge_system.md)")


_VAR_RE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def render_prompt(template: str, variables: dict[str, str], *, name: str = "prompt") -> str:
    """Fill ``{{name}}`` placeholders. Every placeholder must be supplied, and every variable used.

    Raises:
        PromptError: a placeholder has no value, or a value has no placeholder.
    """
    used = set(_VAR_RE.findall(template))
    missing = sorted(used - set(variables))
    if missing:
        raise PromptError(f"{name}: no value for {', '.join('{{' + m + '}}' for m in missing)}")
    unused = sorted(set(variables) - used)
    if unused:
        raise PromptError(f"{name}: variables not used by the template: {', '.join(unused)}")
    return _VAR_RE.sub(lambda m: variables[m.group(1)], template)


@dataclass(frozen=True)
class Prompts:
    """The judge's two templates and their hash (which goes into cache keys and results)."""

    system: str
    user: str
    hash: str

    @classmethod
    def load(cls, directory: Path | None = None) -> Prompts:
        """Read judge_system.md and judge_user.md.

        Raises:
            PromptError: a file is missing.
        """
        d = directory or prompts_dir()
        try:
            system = (d / "judge_system.md").read_text(encoding="utf-8")
            user = (d / "judge_user.md").read_text(encoding="utf-8")
        except OSError as exc:
            raise PromptError(f"cannot read the judge prompts in {d}: {exc}") from None
        digest = hashlib.sha256(f"{SCHEMA_VERSION}\0{system}\0{user}".encode()).hexdigest()[:16]
        return cls(system=system, user=user, hash=digest)


# --------------------------------------------------------------------------- reply schema

SCHEMA_VERSION = "2"
MAX_QUOTE = 200
MAX_REASON = 160


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointVerdict(_Strict):
    """The judge's ruling on one key point."""

    verdict: Literal["met", "partial", "missing", "contradicted"]
    quote: str = Field(max_length=MAX_QUOTE)
    """The shortest span of the answer, verbatim, that shows the verdict ("" when missing)."""
    reason: str = Field(max_length=MAX_REASON)
    """One line."""


class MisconceptionVerdict(_Strict):
    """The judge's ruling on one misconception."""

    present: bool
    quote: str = Field(max_length=MAX_QUOTE)
    reason: str = Field(max_length=MAX_REASON)


class JudgeReply(_Strict):
    """A whole reply, keyed by id: one entry per key point asked and per misconception.

    Keyed objects rather than lists: a schema then requires every id exactly once, which a small
    model under a grammar cannot get wrong by repeating or skipping items.
    """

    points: dict[str, PointVerdict]
    misconceptions: dict[str, MisconceptionVerdict] = {}


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline_refs(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k not in ("$defs", "title", "description", "default")}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _bound_lists(node: Any) -> None:
    # No list in the reply schema today; should one appear, it must be bounded (a base model
    # under a grammar keeps adding items until the token limit otherwise).
    if isinstance(node, dict):
        if node.get("type") == "array":
            node.setdefault("maxItems", 16)
        for v in node.values():
            _bound_lists(v)


@functools.lru_cache(maxsize=1)
def _entry_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    # Built once: pydantic's schema generation costs about a millisecond per call.
    verdict = _inline_refs(PointVerdict.model_json_schema(), {})
    ruling = _inline_refs(MisconceptionVerdict.model_json_schema(), {})
    for obj in (verdict, ruling):
        obj.update(_closed(obj["properties"]))
    return verdict, ruling


def reply_schema(point_ids: Sequence[str], misconception_ids: Sequence[str]) -> dict[str, Any]:
    """The JSON schema for a reply about these ids (from the pydantic models, refs inlined).

    Every id is a required property, strings have a maxLength, lists are bounded, and no extra
    keys are allowed (what OpenAI's strict mode and llama.cpp's grammars both accept).
    """
    verdict, ruling = _entry_schemas()
    schema = _closed(
        {
            "points": _closed({pid: verdict for pid in point_ids}),
            "misconceptions": _closed({mid: ruling for mid in misconception_ids}),
        }
    )
    _bound_lists(schema)
    return schema


class ReplyError(ValueError):
    """A reply that is not the JSON asked for; the message is fed back on a re-ask."""


def parse_reply(text: str | None, point_ids: Sequence[str], misconception_ids: Sequence[str]) -> JudgeReply:
    """Tolerantly parse a reply: code fences and chatter around the JSON object are ignored.

    Raises:
        ReplyError: no JSON object, a schema violation, or a key point left out.
    """
    if not text or not text.strip():
        raise ReplyError("the reply is empty")
    start = text.find("{")
    if start < 0:
        raise ReplyError("the reply contains no JSON object")
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise ReplyError(f"invalid JSON ({exc.msg} at char {exc.pos}); the reply may be truncated") from None
    if isinstance(data, dict):
        # Also accept the list shape ([{"id": ..., ...}]) that models sometimes produce in text mode.
        for key in ("points", "misconceptions"):
            items = data.get(key)
            if isinstance(items, list) and all(isinstance(i, dict) and "id" in i for i in items):
                data[key] = {str(i["id"]): {k: v for k, v in i.items() if k != "id"} for i in reversed(items)}
    try:
        reply = JudgeReply.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReplyError(f"{where}: {first['msg']}") from None
    left_out = [pid for pid in point_ids if pid not in reply.points]
    if left_out:
        raise ReplyError(f"no verdict for key point(s) {', '.join(left_out)}; give one entry per key point")
    reply.points = {pid: reply.points[pid] for pid in point_ids}
    reply.misconceptions = {mid: v for mid, v in reply.misconceptions.items() if mid in set(misconception_ids)}
    return reply


# --------------------------------------------------------------------------- the answer as data

_SENTENCE_END_RE = re.compile(r"[.!?\n]")


def grader_addressed(norm: Normalized) -> list[tuple[int, int]]:
    """Spans (normalised offsets) of text addressed to the grader (injection.py's patterns)."""
    return sorted(find_injections(norm))


def injection_blocks(norm: Normalized) -> list[tuple[int, int]]:
    """Whole sentences (normalised offsets) that contain text addressed to the grader."""
    blocks: list[tuple[int, int]] = []
    text = norm.text
    for s, e in grader_addressed(norm):
        left = max((m.end() for m in _SENTENCE_END_RE.finditer(text, 0, s)), default=0)
        m = _SENTENCE_END_RE.search(text, e)
        right = m.end() if m else len(text)
        if blocks and left <= blocks[-1][1]:
            blocks[-1] = (blocks[-1][0], max(blocks[-1][1], right))
        else:
            blocks.append((left, right))
    return blocks


def answer_for_judge(norm: Normalized, blocks: list[tuple[int, int]], max_chars: int) -> tuple[str, bool]:
    """The answer as the judge sees it: grader-addressed sentences removed, angle brackets
    neutralised so no text can close the delimiters, cut at `max_chars`. Returns (text, truncated)."""
    original = norm.original
    parts: list[str] = []
    pos = 0
    for s, e in blocks:
        os_, oe = norm.span(s, e)
        parts.append(original[pos:os_])
        parts.append(" […] ")
        pos = oe
    parts.append(original[pos:])
    text = "".join(parts).replace("<", "‹").replace(">", "›")
    truncated = len(text) > max_chars
    return (text[:max_chars] if truncated else text), truncated


def one_line(text: str) -> str:
    """Whitespace collapsed to single spaces."""
    return " ".join(text.split())


# --------------------------------------------------------------------------- requests


@dataclass
class Request:
    """Everything needed to ask about one answer (and to estimate it)."""

    messages: list[dict[str, str]]
    schema: dict[str, Any]
    point_ids: list[str]
    misconception_ids: list[str]
    max_tokens: int
    key_parts: dict[str, Any]
    truncated: bool


@dataclass
class SampleOutcome:
    """One sample: a validated reply, or why there is none."""

    reply: JudgeReply | None
    usage: Usage
    error: str | None = None
    raw: str | None = None
    mode: str | None = None


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class Judge:
    """An async judge client. Create one per run, use it from one event loop, `await aclose()` it.

    Concurrency is bounded by `config.concurrency`; usage accumulates in `usage`.
    """

    def __init__(self, config: JudgeConfig, *, prompts: Prompts | None = None) -> None:
        self.config = config
        self.concurrency = config.concurrency
        self.prompts = prompts or Prompts.load()
        self.usage = Usage()
        self.prices = load_prices(config.prices)
        self.budget = Budget(config.max_cost)
        self._cache = ReplyCache(config.cache_dir or default_cache_dir()) if config.cache else None
        self._client: Any = None
        self._sem: asyncio.Semaphore | None = None
        self._mode: Mode = config.response_format

    @property
    def priced(self) -> bool:
        """True when the price table knows the model."""
        return price_of(self.config.model, self.prices) is not None

    def _openai(self) -> Any:
        if self._client is None:
            import openai  # lazy: only a run that really calls the judge pays for the import

            self._client = openai.AsyncOpenAI(
                base_url=self.config.base_url,
                # Local servers need no key; the client insists on one, so send a placeholder.
                api_key=os.environ.get(KEY_ENV) or "sk-no-key-required",
                max_retries=0,  # retries are ours: Retry-After, backoff and re-asks in one place
                timeout=self.config.timeout,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client and the cache."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    async def __aenter__(self) -> Judge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- building the request

    def build(self, rubric: Rubric, norm: Normalized, matcher_points: list[PointResult], lang: str) -> Request | None:
        """The request for one answer, or None when the policy asks the judge nothing."""
        full = self.config.policy == "full"
        asked = [p.id for p in matcher_points if full or p.status != "met"]
        if not asked:
            return None
        mc_ids = [m.id for m in rubric.misconceptions]
        blocks = injection_blocks(norm)
        text, truncated = answer_for_judge(norm, blocks, self.config.max_answer_chars)
        tag = "answer-" + hashlib.sha256(norm.original.encode()).hexdigest()[:8]
        points = "\n".join(f"- {pid}: {one_line(rubric.point(pid).statement.get(lang))}" for pid in asked)
        mcs = (
            "\n".join(f"- {m.id}: {one_line((m.statement or m.correction).get(lang))}" for m in rubric.misconceptions)
            if mc_ids
            else "(none)"
        )
        hints = ""
        if self.config.policy == "full":
            found = [f"- {p.id}: {p.status}: " + " | ".join(e.text for e in p.evidence[:2]) for p in matcher_points if p.evidence]
            if found:
                hints = (
                    "\nA keyword matcher found (hints only; it can be wrong about paraphrases and negation):\n" + "\n".join(found) + "\n"
                )
        lang_name = "Chinese" if lang == "zh" else "English"
        system = render_prompt(
            self.prompts.system,
            {"open_tag": f"<{tag}>", "close_tag": f"</{tag}>", "feedback_lang": lang_name},
            name="judge_system.md",
        )
        user = render_prompt(
            self.prompts.user,
            {
                "question": one_line(rubric.question.get(lang)),
                "points": points,
                "misconceptions": mcs,
                "hints": hints,
                "open_tag": f"<{tag}>",
                "close_tag": f"</{tag}>",
                "answer": text,
            },
            name="judge_user.md",
        )
        max_tokens = min(4096, 48 + 110 * len(asked) + 90 * len(mc_ids))
        key_parts = {
            "endpoint": self.config.base_url or "openai",
            "model": self.config.model,
            "prompt": self.prompts.hash,
            "rubric": rubric.version,
            "answer": " ".join(normalize_text(norm.original).split()),
            "policy": self.config.policy,
            "asked": asked,
            "lang": lang,
            "temperature": self.config.sampling_temperature,
            "max_tokens": max_tokens,
        }
        return Request(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            schema=reply_schema(asked, mc_ids),
            point_ids=asked,
            misconception_ids=mc_ids,
            max_tokens=max_tokens,
            key_parts=key_parts,
            truncated=truncated,
        )

    def estimate(self, req: Request) -> tuple[int, int, float]:
        """(prompt tokens, completion tokens, dollars) one sample of `req` should cost."""
        prompt = sum(estimate_tokens(m["content"]) + 4 for m in req.messages)
        if self._mode == "json_schema":
            prompt += estimate_tokens(json.dumps(req.schema)) // 4  # servers pass a compact grammar, not the text
        completion = 30 + 45 * len(req.point_ids) + 25 * len(req.misconception_ids)
        return prompt, completion, cost_of(self.config.model, prompt, completion, self.prices)

    # ----------------------------------------------------------------- one sample

    def _response_format(self, req: Request) -> dict[str, Any] | None:
        if self._mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "grading", "schema": req.schema, "strict": True}}
        if self._mode == "json_object":
            return {"type": "json_object"}
        return None

    async def _backoff(self, attempt: int, retry_after: float | None = None) -> None:
        if retry_after is not None:
            delay = retry_after
        else:
            delay = min(self.config.max_backoff, self.config.backoff * 2**attempt) * random.uniform(0.75, 1.25)
        await asyncio.sleep(delay)

    async def sample(self, req: Request, index: int) -> SampleOutcome:
        """One validated reply for `req` (from the cache when possible), or an error."""
        key = cache_key(**req.key_parts, sample=index)
        if self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None:
                reply_data, _ = hit
                try:
                    reply = parse_reply(json.dumps(reply_data), req.point_ids, req.misconception_ids)
                    self.usage.cached += 1
                    return SampleOutcome(reply, Usage(cached=1), mode="cache")
                except ReplyError:
                    pass  # a stale entry from another schema: ask again
        _, _, est_cost = self.estimate(req)
        if not self.budget.reserve(est_cost):
            self.usage.skipped_budget += 1
            return SampleOutcome(None, Usage(skipped_budget=1), error="max cost reached; no call made")
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.config.concurrency)
        used = Usage()
        try:
            async with self._sem:
                outcome = await self._ask(req, used)
        finally:
            self.budget.settle(est_cost, used.cost)
            self.usage.add(used)
        outcome.usage = used
        if outcome.reply is not None and self._cache is not None:
            self._cache.put(key, outcome.reply.model_dump(mode="json"), used.as_dict())
        return outcome

    async def _ask(self, req: Request, used: Usage) -> SampleOutcome:
        import openai

        client = self._openai()
        messages = list(req.messages)
        reasked = False
        last_error = "no attempt made"
        raw: str | None = None
        attempt = 0
        while attempt <= self.config.retries:
            mode = self._mode
            kwargs: dict[str, Any] = {
                "model": self.config.model,
                "messages": messages,
                "temperature": self.config.sampling_temperature,
                "max_tokens": req.max_tokens,
            }
            fmt = self._response_format(req)
            if fmt is not None:
                # As extra_body: sent as is, without the client's recursive transform of the schema.
                kwargs["extra_body"] = {"response_format": fmt}
            used.requests += 1
            try:
                resp = await client.chat.completions.create(**kwargs)
            except openai.RateLimitError as exc:
                wait = _retry_after(exc.response.headers)
                last_error = "rate limited (429)"
                if wait is not None and wait > self.config.max_retry_after:
                    return SampleOutcome(None, used, error=f"rate limited; Retry-After {wait:.0f}s is too long", raw=raw)
                attempt += 1
                if attempt <= self.config.retries:
                    await self._backoff(attempt - 1, wait)
                continue
            except openai.BadRequestError as exc:
                if mode != "text":
                    # The server rejects this response_format: step down and try again at once.
                    self._mode = _MODES[_MODES.index(mode) + 1]
                    continue
                return SampleOutcome(None, used, error=f"request rejected (400): {str(exc)[:200]}", raw=raw)
            except openai.APIStatusError as exc:
                last_error = f"server error ({exc.status_code})"
                if exc.status_code < 500 and exc.status_code not in (408, 409):
                    return SampleOutcome(None, used, error=f"request refused ({exc.status_code}): {str(exc)[:200]}", raw=raw)
                attempt += 1
                if attempt <= self.config.retries:
                    await self._backoff(attempt - 1, _retry_after(exc.response.headers))
                continue
            except openai.APITimeoutError:
                last_error = f"timed out after {self.config.timeout:g}s"
                attempt += 1
                if attempt <= self.config.retries:
                    await self._backoff(attempt - 1)
                continue
            except openai.APIConnectionError as exc:
                last_error = f"connection failed ({type(exc.__cause__).__name__ if exc.__cause__ else 'error'})"
                attempt += 1
                if attempt <= self.config.retries:
                    await self._backoff(attempt - 1)
                continue
            except openai.OpenAIError as exc:  # e.g. a body the client cannot read
                last_error = f"unreadable response ({type(exc).__name__})"
                attempt += 1
                if attempt <= self.config.retries:
                    await self._backoff(attempt - 1)
                continue
            if resp.usage is not None:
                used.prompt_tokens += resp.usage.prompt_tokens or 0
                used.completion_tokens += resp.usage.completion_tokens or 0
                used.cost += cost_of(self.config.model, resp.usage.prompt_tokens or 0, resp.usage.completion_tokens or 0, self.prices)
            choice = resp.choices[0] if resp.choices else None
            raw = choice.message.content if choice is not None else None
            try:
                reply = parse_reply(raw, req.point_ids, req.misconception_ids)
            except ReplyError as err:
                if choice is not None and choice.finish_reason == "length":
                    last_error = f"reply truncated at max_tokens ({err})"
                else:
                    last_error = f"unreadable reply: {err}"
                attempt += 1
                if not reasked:
                    # Re-ask once with the validation error, as a continuation of the same chat.
                    reasked = True
                    messages = [
                        *req.messages,
                        {"role": "assistant", "content": (raw or "")[:2000]},
                        {
                            "role": "user",
                            "content": f"That reply is not valid: {err}. Reply again with the JSON object only, in the shape asked.",
                        },
                    ]
                else:
                    messages = list(req.messages)
                    if attempt <= self.config.retries:
                        await self._backoff(attempt - 1)
                continue
            return SampleOutcome(reply, used, raw=raw, mode=mode)
        return SampleOutcome(None, used, error=f"{last_error} (gave up after {used.requests} requests)", raw=raw)

    # ----------------------------------------------------------------- one answer

    async def judge(
        self, rubric: Rubric, answer: str, matcher_result: GradeResult | None = None, *, lang: str | None = None
    ) -> GradeResult:
        """Grade `answer` with the matcher and the judge, combined per the policy.

        `matcher_result` (from `grade()`) saves re-running the matcher; its verdicts are used as is.
        Never raises for judge failures: those become unscored points with the reason.
        """
        norm = normalize(answer)
        fb = feedback_language(rubric, detect_language(norm), lang)
        if matcher_result is not None:
            m_points = list(matcher_result.points)
            m_mcs: list[MisconceptionHit] = list(matcher_result.misconceptions)
        else:
            m_points = match_points(rubric, norm)
            m_mcs = match_misconceptions(rubric, norm, fb)
        req = self.build(rubric, norm, m_points, fb)
        meta: dict[str, Any] = {
            "judge": {
                "model": self.config.model,
                "endpoint": _public_url(self.config.base_url),
                "policy": self.config.policy,
                "prompt_hash": self.prompts.hash,
                "samples": self.config.samples,
                "asked": req.point_ids if req else [],
            }
        }
        if req is None:
            meta["usage"] = Usage().as_dict()
            return assemble(rubric, norm, m_points, m_mcs, lang=fb, engine="matcher", meta=meta)
        outcomes = await asyncio.gather(*(self.sample(req, i) for i in range(self.config.samples)))
        grounder = Grounder(norm, blocked=injection_blocks(norm))
        per_point: dict[str, list[JudgedPoint]] = {pid: [] for pid in req.point_ids}
        per_mc: dict[str, list[JudgedMisconception]] = {mid: [] for mid in req.misconception_ids}
        errors = [o.error for o in outcomes if o.reply is None and o.error]
        for o in outcomes:
            if o.reply is None:
                continue
            for pid, pv in o.reply.points.items():
                g = grounder.locate(pv.quote) if pv.verdict != "missing" else None
                grounded = g is not None and g.evidence is not None
                verdict = pv.verdict if (pv.verdict == "missing" or grounded) else "missing"
                per_point[pid].append(
                    JudgedPoint(
                        verdict=verdict,
                        evidence=g.evidence if g is not None else None,
                        reason=pv.reason,
                        claimed=pv.verdict,
                        grounding_error=None if (g is None or grounded) else g.reason,
                    )
                )
            for mid, mv in o.reply.misconceptions.items():
                g = grounder.locate(mv.quote) if mv.present else None
                per_mc[mid].append(
                    JudgedMisconception(
                        present=mv.present and g is not None and g.evidence is not None,
                        evidence=g.evidence if g is not None else None,
                        reason=mv.reason,
                        grounding_error=g.reason if g is not None and g.evidence is None else None,
                    )
                )
        votes: dict[str, Vote] | None = {pid: vote(s) for pid, s in per_point.items() if s} if any(o.reply for o in outcomes) else None
        mc_votes = {mid: _mc_vote(s) for mid, s in per_mc.items() if s}
        injection = bool(grader_addressed(norm))
        combined = combine(
            rubric,
            m_points,
            m_mcs,
            req.point_ids,
            votes,
            mc_votes,
            failure=errors[0] if errors else None,
            injection=injection,
            threshold=self.config.agreement_threshold,
            lang=fb,
        )
        usage = Usage()
        for o in outcomes:
            usage.add(o.usage)
        if votes is None:
            usage.failures += 1
            self.usage.failures += 1
        flags = list(combined.flags)
        if req.truncated:
            flags.append(FLAG_TRUNCATED)
        if injection:
            flags.append(FLAG_INJECTION)
        meta["judge"].update(
            {
                "mode": sorted({o.mode for o in outcomes if o.mode}),
                "decided_by": combined.decided_by,
                "agreement": combined.agreement,
                "unscored": combined.unscored,
                "capped_for_injection": combined.capped,
                "misconceptions_added": combined.judge_misconceptions,
                "ungrounded": sorted(pid for pid, s in per_point.items() if any(j.grounding_error for j in s)),
                "errors": errors,
                "raw": [o.raw[:4000] for o in outcomes if o.raw],
            }
        )
        meta["usage"] = usage.as_dict()
        return assemble(rubric, norm, combined.points, combined.misconceptions, lang=fb, engine=combined.engine, flags=flags, meta=meta)

    async def grade_many(self, items: Iterable[tuple[Rubric, str]], *, lang: str | None = None) -> list[GradeResult]:
        """Grade (rubric, answer) pairs concurrently (at most `concurrency` requests in flight), in order.

        At most 2 × concurrency answers are in progress at once: preparing all of them up front
        would hold the event loop while the first replies wait.
        """
        gate = asyncio.Semaphore(2 * self.concurrency)

        async def one(rubric: Rubric, answer: str) -> GradeResult:
            async with gate:
                return await self.judge(rubric, answer, lang=lang)

        return list(await asyncio.gather(*(one(r, a) for r, a in items)))

    def dry_run(self, items: Iterable[tuple[Rubric, str]], *, lang: str | None = None) -> DryRun:
        """Estimate tokens and cost for `items` without any call (cached replies count as free)."""
        est = DryRun(model=self.config.model, priced=self.priced)
        for rubric, answer in items:
            norm = normalize(answer)
            fb = feedback_language(rubric, detect_language(norm), lang)
            req = self.build(rubric, norm, match_points(rubric, norm), fb)
            est.answers += 1
            if req is None:
                continue
            p, c, cost = self.estimate(req)
            for i in range(self.config.samples):
                if self._cache is not None and self._cache.get(cache_key(**req.key_parts, sample=i)) is not None:
                    est.cached += 1
                    continue
                est.requests += 1
                est.prompt_tokens += p
                est.completion_tokens += c
                est.cost += cost
        return est


def _public_url(url: str | None) -> str:
    """The endpoint for results: without user:password@ or a query string (which may carry a key)."""
    if not url:
        return "openai"
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _mc_vote(samples: list[JudgedMisconception]) -> JudgedMisconception:
    present = [s for s in samples if s.present]
    # Present only by a strict majority: a penalty needs more than a coin flip.
    return present[0] if len(present) * 2 > len(samples) else JudgedMisconception(False, None, samples[0].reason)


@dataclass
class DryRun:
    """What a run would cost, estimated before any call."""

    model: str
    priced: bool
    answers: int = 0
    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the terminal."""
        cost = f"~${self.cost:.4f}" if self.priced else "cost unknown (no price for this model)"
        return (
            f"dry run: {self.answers} answers, {self.requests} requests ({self.cached} cached), "
            f"~{self.prompt_tokens} prompt + ~{self.completion_tokens} completion tokens, {cost}; no call made"
        )


# --------------------------------------------------------------------------- public helpers


async def agrade(rubric: Rubric, answer: str, *, lang: str | None = None, judge: JudgeConfig | Judge) -> GradeResult:
    """Async `grade()` with the judge. With a config, a client is opened and closed around the call."""
    if isinstance(judge, Judge):
        return await judge.judge(rubric, answer, lang=lang)
    async with Judge(judge) as j:
        return await j.judge(rubric, answer, lang=lang)


async def grade_many(
    items: Iterable[tuple[Rubric, str]], config: JudgeConfig, concurrency: int | None = None, *, lang: str | None = None
) -> tuple[list[GradeResult], Usage]:
    """Grade many (rubric, answer) pairs through one client; returns the results (in order) and the usage."""
    if concurrency is not None:
        config = replace(config, concurrency=concurrency)
    async with Judge(config) as j:
        results = await j.grade_many(items, lang=lang)
        return results, j.usage


def grade_with_judge(
    rubric: Rubric, answer: str, *, lang: str | None = None, policy: str | None = None, config: JudgeConfig | None = None
) -> GradeResult:
    """Synchronous grade with the judge; the config defaults to the environment ($GRADER_MODEL, …).

    Raises:
        JudgeError: no model is configured. Judge failures do not raise: see `Judge.judge`.
    """
    cfg = config or JudgeConfig.from_env()
    if policy:
        cfg = replace(cfg, policy=policy)  # type: ignore[arg-type]  # validated in __post_init__
    return asyncio.run(agrade(rubric, answer, lang=lang, judge=cfg))


def judge_one(
    rubric: Rubric, answer: str, config: JudgeConfig, *, lang: str | None = None, dry_run: bool = False
) -> tuple[GradeResult | None, str]:
    """For `grader grade --judge`: the result (None on a dry run) and a usage line for the terminal."""

    async def run() -> tuple[GradeResult | None, str]:
        async with Judge(config) as j:
            if dry_run:
                return None, j.dry_run([(rubric, answer)], lang=lang).summary()
            result = await j.judge(rubric, answer, lang=lang)
            return result, j.usage.summary(priced=j.priced)

    return asyncio.run(run())
