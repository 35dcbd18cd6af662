"""Text normalisation, done once per answer, with a map back to the original characters.

Normalised text is NFKC (full-width → half-width), case-folded, simplified Chinese, with
Chinese punctuation mapped to ASCII. Tokens are Latin words/numbers and single CJK
characters; filler tokens are dropped so phrases match across "the", "了" and friends.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

_PUNCT = str.maketrans(
    {
        # "。" stays as it is: it always ends a sentence, even between Latin words ("rescale。p")
        "，": ",",
        "、": ",",
        "；": ";",
        "：": ":",
        "？": "?",
        "！": "!",
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "「": '"',
        "」": '"',
        "『": '"',
        "』": '"',
        "（": "(",
        "）": ")",
        "【": "[",
        "】": "]",
        "《": "<",
        "》": ">",
        "〈": "<",
        "〉": ">",
        "—": "-",
        "–": "-",
        "－": "-",
        "～": "~",
        "…": ".",
        "·": " ",
        "　": " ",
        "\u00a0": " ",
        "\t": " ",
        "\r": " ",  # "\r\n" must not read as a blank line (a sentence break)
        "\u200b": " ",
    }
)

_PUNCT_MAP = {chr(k): v for k, v in _PUNCT.items()}
# str.translate looks every character up in a dict; a regex finds the few that change ~15x faster.
_PUNCT_RE = re.compile("[" + re.escape("".join(_PUNCT_MAP)) + "]")


def _punct_one(m: re.Match[str]) -> str:
    return _PUNCT_MAP[m.group()]


def map_punct(text: str) -> str:
    """Chinese punctuation and odd whitespace to ASCII, character for character (same length)."""
    return _PUNCT_RE.sub(_punct_one, text)


_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
# Latin words may carry an apostrophe suffix (don't, model's); numbers keep decimals.


def _cjk_class_without(chars: str) -> str:
    """The CJK character ranges with `chars` cut out (re has no class subtraction)."""
    ranges = [(0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)]
    for c in sorted(map(ord, chars)):
        out = []
        for lo, hi in ranges:
            if lo <= c <= hi:
                out += [r for r in ((lo, c - 1), (c + 1, hi)) if r[0] <= r[1]]
            else:
                out.append((lo, hi))
        ranges = out
    return "".join(f"{chr(lo)}-{chr(hi)}" if lo < hi else chr(lo) for lo, hi in ranges)


FILLER_ZH_CHARS = "的地得了着"
# Latin words (may carry an apostrophe suffix: don't, model's; numbers keep decimals), or a run
# of CJK characters without the fillers, which the regex skips so runs need no filtering.
_TOKEN_RE = re.compile(rf"([a-z0-9\u03b1-\u03c9]+(?:\.[0-9]+)*(?:'[a-z]+)?)|([{_cjk_class_without(FILLER_ZH_CHARS)}]+)")

FILLER_EN = frozenset({"the", "a", "an", "is", "are", "was", "were", "be", "been", "being", "it", "its"})

_CONTRACTIONS = {"can't": "can", "won't": "will", "shan't": "shall", "ain't": "is"}
# Chat-style contractions without the apostrophe.
_BARE_NEG = {
    "dont": "do",
    "doesnt": "does",
    "didnt": "did",
    "isnt": "is",
    "arent": "are",
    "wasnt": "was",
    "werent": "were",
    "cant": "can",
    "couldnt": "could",
    "shouldnt": "should",
    "wouldnt": "would",
    "wont": "will",
    "havent": "have",
    "hasnt": "has",
    "hadnt": "had",
    "aint": "is",
    "mustnt": "must",
}


@dataclass(slots=True)
class Tokens:
    """The tokens of a normalised text, as parallel lists, plus lookup indexes.

    A token is a Latin word or number, or one CJK character. Filler words are dropped.
    """

    text: list[str] = field(default_factory=list)
    """Each token as normalised."""
    stem: list[str] = field(default_factory=list)
    """The key the matcher compares: an inflection-free stem for Latin words."""
    start: list[int] = field(default_factory=list)
    """Start offsets in the normalised text."""
    end: list[int] = field(default_factory=list)
    """End offsets in the normalised text."""
    cjk: list[bool] = field(default_factory=list)
    """True for a CJK character."""
    breaks: list[int] = field(default_factory=list)
    """Offsets of clause punctuation; a phrase never spans one."""
    joined: list[str | None] = field(default_factory=list)
    """Token i and i+1 written together ("warm up" → "warmup"), for adjacent Latin words."""
    index: dict[str, list[int]] = field(default_factory=dict)
    """Positions of each stem."""
    n_cjk: int = 0
    """How many CJK characters (fillers excluded)."""
    n_words: int = 0
    """How many alphabetic Latin words."""
    _sorted: tuple[list[str], list[int]] | None = None
    joined_index: dict[str, list[int]] = field(default_factory=dict)
    """Positions of each joined pair."""
    cjk_stream: str = ""
    """All CJK tokens run together (fillers dropped): Chinese phrases are found in it with str.find."""
    cjk_pos: list[int] = field(default_factory=list)
    """Token index of each character of cjk_stream."""
    cjk_keys: frozenset[str] = frozenset()
    """Every CJK character and adjacent pair in cjk_stream: the start keys Chinese phrases can have."""
    _cjk_memo: dict[str, list[int]] = field(default_factory=dict)
    _heads: frozenset[str] | None = None
    latin: list[int] = field(default_factory=list)
    """Positions of the Latin tokens."""

    def __len__(self) -> int:
        return len(self.text)

    def cjk_positions(self, key: str) -> list[int]:
        """Token positions where the CJK characters `key` start (adjacent in the stream; callers verify)."""
        got = self._cjk_memo.get(key)
        if got is None:
            got = []
            stream, pos = self.cjk_stream, self.cjk_pos
            k = stream.find(key)
            while k >= 0:
                got.append(pos[k])
                k = stream.find(key, k + 1)
            self._cjk_memo[key] = got
        return got

    def _by_spelling(self) -> tuple[list[str], list[int]]:
        """The Latin tokens sorted by spelling, and their positions (built on first use)."""
        if self._sorted is None:
            text = self.text
            pairs = sorted([(text[i], i) for i in self.latin])
            self._sorted = ([t for t, _ in pairs], [i for _, i in pairs])
        return self._sorted

    def prefixed(self, prefix: str) -> list[int]:
        """Positions of Latin tokens starting with `prefix`."""
        words, positions = self._by_spelling()
        out = []
        k = bisect_left(words, prefix)
        while k < len(words) and words[k].startswith(prefix):
            out.append(positions[k])
            k += 1
        return sorted(out)

    def heads(self) -> frozenset[str]:
        """The first three letters of every Latin token (a cheap test for prefixes of 3+ letters)."""
        if self._heads is None:
            text = self.text
            self._heads = frozenset([text[i][:3] for i in self.latin])
        return self._heads

    def has_prefix(self, prefix: str) -> bool:
        """True when some Latin token starts with `prefix`."""
        words = self._by_spelling()[0]
        k = bisect_left(words, prefix)
        return k < len(words) and words[k].startswith(prefix)

    def adjacent(self, i: int) -> bool:
        """True when no clause punctuation separates token i-1 from token i."""
        b = self.breaks
        if not b:
            return True
        k = bisect_left(b, self.end[i - 1])
        return k >= len(b) or b[k] >= self.start[i]


@dataclass(slots=True)
class Normalized:
    """An answer after normalisation, with offsets back into the original."""

    original: str
    text: str
    starts: list[int]
    ends: list[int]
    tokens: Tokens = field(default_factory=Tokens)
    cache: dict[Any, Any] = field(default_factory=dict)
    """Per-answer memo used by the matcher (clause bounds, cue positions)."""

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalised span [start, end) to the original text."""
        if not self.starts or end <= start:
            return (0, 0)
        start = min(max(start, 0), len(self.starts) - 1)
        end = min(max(end, start + 1), len(self.ends))
        return self.starts[start], self.ends[end - 1]


@lru_cache(maxsize=1)
def _t2s() -> Any:
    try:
        import opencc  # lazy: only answers with CJK pay for it
    except ImportError:  # pragma: no cover - opencc is a declared dependency
        return None
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese, same length as the input (character for character)."""
    conv = _t2s()
    if conv is None:
        return text
    out: str = conv.convert(text)
    if len(out) == len(text):
        return out
    # Phrase-level conversion changed the length: convert per character to keep offsets.
    return "".join(c if not _CJK_RE.match(c) else (conv.convert(c) or c)[0] for c in text)


_COMBINING_RE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\u3099\u309a\u1160-\u11ff\uff9e\uff9f]")


def _fold(text: str) -> tuple[str, list[int], list[int]]:
    # Identity offsets when offsets_kept(): the common case, full-width "，（）" included.
    fast = unicodedata.normalize("NFKC", text).casefold()
    if offsets_kept(text, fast):
        return fast, list(range(len(text))), list(range(1, len(text) + 1))
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, ch in enumerate(text):
        folded = unicodedata.normalize("NFKC", ch).casefold()
        for out in folded:
            chars.append(out)
            starts.append(i)
            ends.append(i + 1)
    return "".join(chars), starts, ends


def normalize_text(text: str) -> str:
    """The normalised form of `text` (no offsets): used for phrases, cache keys and dedupe."""
    folded = map_punct(unicodedata.normalize("NFKC", _clean(text)).casefold())
    if _CJK_RE.search(folded):
        folded = to_simplified(folded)
    return folded


def _clean(text: str) -> str:
    """Replace what cannot be encoded (lone surrogates from broken input) by '?', length kept."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def offsets_kept(text: str, folded: str) -> bool:
    """Whether `folded` (text folded by NFKC and casefold; normalize_text() keeps its length)
    lines up with `text` character for character: the same length and no combining mark (only a
    combining mark can shrink the text by composition, so an unchanged length then means 1:1)."""
    return len(folded) == len(text) and not _COMBINING_RE.search(text)


def normalize(text: str) -> Normalized:
    """Normalise an answer once: folded text, offsets to the original, and tokens."""
    return normalize_prefolded(text, None)


def normalize_prefolded(text: str, folded: str | None) -> Normalized:
    """`normalize(text)` for a caller that already has `folded = normalize_text(text)`: when
    offsets_kept(text, folded) the folding is not done again. With None, it is normalize(text)."""
    if folded is not None and offsets_kept(text, folded):
        starts, ends = list(range(len(text))), list(range(1, len(text) + 1))
    else:
        folded, starts, ends = _fold(_clean(text))
        folded = map_punct(folded)
        if _CJK_RE.search(folded):
            folded = to_simplified(folded)
    norm = Normalized(original=text, text=folded, starts=starts, ends=ends)
    splits = [m.end() for m in _GLUED_RE.finditer(text)]
    if splits and len(folded) != len(text):
        where: dict[int, int] = {}  # original offset -> first folded offset
        for i, o in enumerate(starts):
            where.setdefault(o, i)
        splits = [where[o] for o in splits if o in where]
    norm.tokens = tokenize(folded, splits)
    return norm


# Words glued where a line break was lost ("uses energyPassive transport"): a lower-case word of
# 3+ letters, then a capitalised word of 3+ letters. Names stay whole: "ReLU", "PyTorch", "iPhone",
# "TensorFlow", "CosineAnnealingLR" (a capital first letter is a name, not a sentence end).
_GLUED_RE = re.compile(r"\b[a-z]{3,}(?=[A-Z][a-z]{2})")


# Punctuation a phrase never runs across (brackets are fine: "f(x)", "model.eval()").
# (Every alternative starts with its own character, so the regex engine can skip ahead: the
# full stop after a Chinese character is written "\.(?<=…\.)" rather than "(?<=…)\.".)
_GAP_BREAK_RE = re.compile(r"[,;:!?。]|\.(?:\s|$)|\.(?<=[\u3400-\u9fff]\.)|\n[ \t]*\n")


def _word_tokens(word: str) -> tuple[int, tuple[tuple[str, str], ...]]:
    """(1 if alphabetic, the (text, stem) tokens) of one Latin word: n't expanded, fillers dropped."""
    base = word
    negated = False
    if "'" in word:
        if word.endswith("n't"):
            base, negated = _CONTRACTIONS.get(word, word[:-3]), True
        else:
            base = word.split("'", 1)[0]
    elif word in _BARE_NEG:
        base, negated = _BARE_NEG[word], True
    out: list[tuple[str, str]] = []
    if base and base not in FILLER_EN:
        out.append((base, stem(base)))
    if negated:
        out.append(("not", "not"))
    return int(word.isalpha()), tuple(out)


_WORDS: dict[str, tuple[int, tuple[tuple[str, str], ...]]] = {}
"""Memo of _word_tokens (answers reuse a small vocabulary); cleared when it grows large."""


def tokenize(text: str, splits: list[int] | None = None) -> Tokens:
    """Split normalised text into tokens, expanding n't and dropping filler words.

    `splits`: offsets where a Latin word is cut in two (words glued at a lost line break).
    """
    toks = Tokens()
    t_text, t_stem, t_start, t_end, t_cjk = toks.text, toks.stem, toks.start, toks.end, toks.cjk
    latin = toks.latin
    index = toks.index
    runs: list[str] = []
    cjk_pos = toks.cjk_pos
    words = _WORDS
    n_words = 0
    for m in _TOKEN_RE.finditer(text):
        word = m.group(1)
        if word is None:
            # a run of CJK characters: one token each
            run = m.group(2)
            start, end = m.span()
            k = len(t_text)
            runs.append(run)
            cjk_pos.extend(range(k, k + len(run)))
            t_text.extend(run)
            t_stem.extend(run)
            t_start.extend(range(start, end))
            t_end.extend(range(start + 1, end + 1))
            t_cjk.extend([True] * len(run))
            continue
        start, end = m.span()
        pieces = [(word, start, end)]
        if splits:
            cut = [c - start for c in splits if start < c < end]
            if cut:
                pieces = [(word[a:b], start + a, start + b) for a, b in zip([0, *cut], [*cut, len(word)], strict=True)]
        for word, start, end in pieces:
            info = words.get(word)
            if info is None:
                if len(words) > 100_000:
                    words.clear()
                info = words[word] = _word_tokens(word)
            n_words += info[0]
            for t, st in info[1]:
                i = len(t_text)
                latin.append(i)
                t_text.append(t)
                t_stem.append(st)
                t_start.append(start)
                t_end.append(end)
                t_cjk.append(False)
                got = index.get(st)
                if got is None:
                    index[st] = [i]
                else:
                    got.append(i)
    toks.n_words = n_words
    toks.n_cjk = len(cjk_pos)
    n = len(t_text)
    toks.breaks = [m.start() for m in _GAP_BREAK_RE.finditer(text)]
    if runs:
        stream = toks.cjk_stream = "".join(runs)
        toks.cjk_keys = frozenset(stream) | frozenset(map(operator.add, stream, stream[1:]))
    joined: list[str | None] = [None] * n
    joined_index = toks.joined_index
    for i in latin:
        j = i + 1
        if j < n and not t_cjk[j] and t_start[j] - t_end[i] <= 1 and t_text[i] != "not":
            key = t_text[i] + t_text[j]
            joined[i] = key
            got = joined_index.get(key)
            if got is None:
                joined_index[key] = [i]
            else:
                got.append(i)
    toks.joined = joined
    return toks


_VOWELS = set("aeiouy")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A conservative inflectional stem: drops -s/-es/-ed/-ing/-ly and a final e.

    Both rubric phrases and answers go through it, so it only has to be consistent,
    not linguistically right: drop = drops = dropped = dropping, scale = scaling.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    w = word
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("ing") and len(w) >= 6:
        w = w[:-3]
    elif w.endswith("ed") and len(w) >= 5:
        w = w[:-2]
    elif w.endswith("ly") and len(w) >= 6:
        w = w[:-2]
    elif w.endswith("es") and len(w) >= 5 and w[-3] in "sxz":
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is", "as")) and len(w) >= 4:
        w = w[:-1]
    if w != word and len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "lsz" and w[-1] not in _VOWELS:
        w = w[:-1]  # dropped -> dropp -> drop (only after a suffix came off: "sgdd" stays)
    if len(w) >= 4 and w.endswith("e"):
        w = w[:-1]
    return w


def detect_language(norm: Normalized) -> Literal["zh", "en", "mixed", "unknown"]:
    """'zh', 'en', 'mixed' or 'unknown', from the share of CJK characters vs Latin words."""
    zh = norm.tokens.n_cjk
    en = norm.tokens.n_words
    # One English word carries about as much as two Chinese characters.
    zh_units, en_units = zh, 2 * en
    total = zh_units + en_units
    if total == 0:
        return "unknown"
    share = zh_units / total
    if share >= 0.8:
        return "zh"
    if share <= 0.2:
        return "en"
    return "mixed"
