"""The offline matcher: compiles a rubric's rules once, then judges answers deterministically.

Data flow: answer → `normalize()` (once) → per-rule spans → negation and exclusions →
one `PointResult` per key point and the misconceptions found.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA

from .negation import is_negated, same_clause, same_sentence
from .normalize import Normalized, Tokens, normalize_text, stem, tokenize
from .result import Evidence, MisconceptionHit, PointResult, Status
from .rubric import AllOf, KeyPoint, Misconception, RegexRule, Rubric, Rule

Span = tuple[int, int]
_FUZZY_MIN = 5  # shortest word that tolerates one edit
_FUZZY_TWO = 9  # shortest word that tolerates two edits


def _allowed_edits(word: str) -> int:
    return 2 if len(word) >= _FUZZY_TWO else 1 if len(word) >= _FUZZY_MIN else 0


@dataclass(frozen=True, slots=True)
class PTok:
    """One token of a compiled phrase."""

    text: str
    stem: str
    cjk: bool
    prefix: bool
    fuzzy: bool


@dataclass(frozen=True, slots=True, eq=False)
class Phrase:
    """A compiled phrase: its tokens, and the source text for messages."""

    source: str
    toks: tuple[PTok, ...]
    uid: int = 0
    """Index of the phrase in its compiled rubric (a cheap memo key)."""
    keys: tuple[str, ...] = ()
    """Index keys the phrase can start with (a CJK pair, or the first word's stem and text)."""
    tail: str = ""
    """Closing brackets the phrase ends with ("O(1)"), shown in its evidence when the answer has them."""
    cjk_run: str = ""
    """The phrase's characters when it is two or more CJK tokens (found with str.find)."""

    def __post_init__(self) -> None:
        if self.toks and not self.keys:
            object.__setattr__(self, "keys", _start_keys(self.toks))
        if len(self.toks) > 1 and all(t.cjk for t in self.toks):
            object.__setattr__(self, "cjk_run", "".join(t.text for t in self.toks))


@dataclass(slots=True)
class CRule:
    """A compiled rule: concepts (each a list of phrase alternatives), or a regex."""

    concepts: list[list[Phrase]] = field(default_factory=list)
    window: int = 0
    regex: re.Pattern[str] | None = None
    rid: int = -1
    """The rule's index in its compiled rubric."""
    cids: list[int] = field(default_factory=list)
    """Per concept: an id shared by every identical concept in the rubric ($terms recur), for memoising."""
    uids: list[frozenset[int]] = field(default_factory=list)
    """Per concept: the uids of its phrases."""

    def __post_init__(self) -> None:
        self.uids = [frozenset(p.uid for p in concept) for concept in self.concepts]


@dataclass(slots=True)
class CItem:
    """A compiled key point or misconception."""

    id: str
    rules: list[CRule]
    partial: list[CRule]
    exclude: list[Phrase]
    exclude_window: int
    ignore_negation: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    """One match of a rule: its parts (sorted spans) and whether it is negated."""

    parts: tuple[Span, ...]
    negated: bool

    @property
    def start(self) -> int:
        return self.parts[0][0]

    @property
    def end(self) -> int:
        return max(e for _, e in self.parts)


def _key_is_enough(phrase: Phrase) -> bool:
    """True when finding the phrase's start key in an answer is all its _Needs would test."""
    toks = phrase.toks
    return len(toks) == 1 or (len(toks) == 2 and toks[0].cjk and toks[1].cjk)


def _start_keys(toks: tuple[PTok, ...]) -> tuple[str, ...]:
    first = toks[0]
    if first.cjk and len(toks) > 1 and toks[1].cjk:
        return (first.text + toks[1].text,)
    return (first.stem, first.text)


@dataclass(slots=True)
class _Scan:
    """One answer seen by one compiled rubric: tokens, fuzzy aliases, phrase memo."""

    norm: Normalized
    fuzzy_at: dict[int, tuple[str, ...]]
    fuzzy_index: dict[str, list[int]]
    memo: dict[int, list[Span]]
    present: frozenset[str] = frozenset()
    """Every key a phrase token can be found by: stems, joined pairs, CJK characters and pairs, typo aliases."""
    possible: set[int] = field(default_factory=set)
    """Uids of the rubric's phrases whose every token the answer has (a cheap necessary test)."""
    live: set[int] = field(default_factory=set)
    """Rules whose every concept has a possible phrase (and regex rules); the others are skipped unseen."""
    concepts: dict[int, list[Span]] = field(default_factory=dict)
    """Spans of each concept already looked up in this answer."""


@dataclass(frozen=True, slots=True)
class _Needs:
    """What an answer must contain for a phrase to have a chance: a cheap test before matching."""

    prefix: str
    """The first token's text when it is a prefix wildcard ("regulari*"), else ''."""
    words: tuple[tuple[str, ...], ...]
    """Per Latin token after a prefix: keys of which one must be present (its stem or its text)."""
    runs: tuple[str, ...]
    """Runs of adjacent CJK tokens: each must occur in the answer's CJK stream."""

    def met(self, present: frozenset[str], stream: str) -> bool:
        """True when an answer with these keys and this CJK stream has everything the phrase needs."""
        return all(run in stream for run in self.runs) and not any(present.isdisjoint(keys) for keys in self.words)


@dataclass(slots=True)
class _KeyPhrases:
    """The phrases one start key can wake, by how much is left to test."""

    sure: list[int] = field(default_factory=list)
    """Uids the key alone shows could occur (one word, or two CJK characters)."""
    cjk: list[tuple[int, str]] = field(default_factory=list)
    """(uid, characters) of longer CJK phrases: tested with one substring search."""
    other: list[tuple[int, _Needs]] = field(default_factory=list)
    """(uid, needs) of the rest."""


def _needs(phrase: Phrase) -> _Needs:
    words: list[tuple[str, ...]] = []
    runs: list[str] = []
    run = ""
    for t in phrase.toks:
        if t.cjk:
            run += t.text
            continue
        if run:
            runs.append(run)
            run = ""
        if not t.prefix:
            words.append((t.stem, t.text) if t.stem != t.text else (t.stem,))
    if run:
        runs.append(run)
    first = phrase.toks[0]
    return _Needs(first.text if first.prefix else "", tuple(words), tuple(runs))


class CompiledRubric:
    """A rubric's rules in matchable form, plus a memo of fuzzy lookups."""

    def __init__(self, rubric: Rubric) -> None:
        self.rubric = rubric
        self._terms = rubric.terms
        self._phrases: dict[tuple[str, bool], Phrase] = {}
        self.points = [self._item(kp, kp.fuzzy) for kp in rubric.key_points]
        self.misconceptions = [self._item(mc, mc.fuzzy) for mc in rubric.misconceptions]
        # Phrases by start key, and the (rule, concept) pairs each phrase serves: an answer only
        # wakes the phrases its words can start, and a rule only when all its concepts are awake.
        self._regex_rules: set[int] = set()
        self._n_concepts: list[int] = []
        members_of: dict[int, list[tuple[int, int]]] = {}  # phrase uid -> (rule, concept) pairs it serves
        self._phrase_needs: dict[int, _Needs] = {}
        self._phrase_of: dict[int, Phrase] = {}
        self._by_key: dict[str, _KeyPhrases] = {}
        prefixed: dict[str, list[int]] = {}  # prefix wildcard -> uids
        concept_ids: dict[tuple[int, ...], int] = {}
        for rid, rule in enumerate(r for item in self.points + self.misconceptions for r in item.rules + item.partial):
            rule.rid = rid
            self._n_concepts.append(len(rule.concepts))
            rule.cids = [concept_ids.setdefault(tuple(sorted(u)), len(concept_ids)) for u in rule.uids]
            if rule.regex is not None:
                self._regex_rules.add(rid)
            for k, concept in enumerate(rule.concepts):
                for p in concept:
                    members = members_of.setdefault(p.uid, [])
                    if (rid, k) not in members:
                        members.append((rid, k))
                    if p.uid not in self._phrase_needs:
                        self._phrase_of[p.uid] = p
                        need = self._phrase_needs[p.uid] = _needs(p)
                        if need.prefix:
                            prefixed.setdefault(need.prefix, []).append(p.uid)
                            continue
                        for key in dict.fromkeys(p.keys):
                            entry = self._by_key.setdefault(key, _KeyPhrases())
                            if _key_is_enough(p):
                                entry.sure.append(p.uid)
                            elif not need.words and len(need.runs) == 1:
                                entry.cjk.append((p.uid, need.runs[0]))
                            else:
                                entry.other.append((p.uid, need))
        self._key_set = frozenset(self._by_key)
        # Prefix wildcards by their first three letters (shorter ones are always tried).
        self._prefix_heads: dict[str, list[tuple[str, list[int]]]] = {}
        self._short_prefixes: list[tuple[str, list[int]]] = []
        for prefix, uids in prefixed.items():
            if len(prefix) >= 3:
                self._prefix_heads.setdefault(prefix[:3], []).append((prefix, uids))
            else:
                self._short_prefixes.append((prefix, uids))
        self._prefix_head_set = frozenset(self._prefix_heads)
        # Per phrase: the one-concept rules it wakes outright, and the (rule, concept) pairs of the others.
        self._single: dict[int, list[int]] = {}
        self._multi: dict[int, list[tuple[int, int]]] = {}
        for uid, members in members_of.items():
            for rid, k in members:
                if self._n_concepts[rid] == 1:
                    self._single.setdefault(uid, []).append(rid)
                else:
                    self._multi.setdefault(uid, []).append((rid, k))
        # Fuzzy vocabulary: rubric words (as written) and their stems, each with its edit budget.
        words = {t.text: t.stem for p in self._phrases.values() for t in p.toks if t.fuzzy}
        self._vocab = sorted(words)
        self._vocab_stem = words
        stems: dict[str, int] = {}
        for word, st in words.items():
            # the budget follows the word, but a short stem never tolerates an edit ("based"/"bagging")
            stems[st] = max(stems.get(st, 0), min(_allowed_edits(word), _allowed_edits(st)))
        self._stem_budget = stems
        self._stems = sorted(stems)
        self._exact_vocab = {t.stem for p in self._phrases.values() for t in p.toks} | {
            t.text for p in self._phrases.values() for t in p.toks
        }
        self._fuzzy_memo: dict[str, tuple[str, ...]] = {}

    # ----------------------------------------------------------------- compile
    def _expand(self, value: str, seen: frozenset[str] = frozenset()) -> list[str]:
        if value.startswith("$") and value[1:] in self._terms and value[1:] not in seen:
            out: list[str] = []
            for v in self._terms[value[1:]]:
                out.extend(self._expand(v, seen | {value[1:]}))
            return out
        return [value]

    def phrases(self, values: Iterable[str], fuzzy: bool) -> list[Phrase]:
        """Compile phrases (expanding $terms); empty phrases are skipped."""
        out: list[Phrase] = []
        for value in values:
            for raw in self._expand(value):
                key = (raw, fuzzy)
                if key not in self._phrases:
                    self._phrases[key] = compile_phrase(raw, fuzzy=fuzzy, uid=2 * len(self._phrases))
                phrase = self._phrases[key]
                if phrase.toks:
                    out.append(phrase)
                    out.extend(_joined_variant(phrase))
        return out

    def _rules(self, rules: Sequence[Rule], fuzzy: bool) -> list[CRule]:
        out: list[CRule] = []
        for rule in rules:
            if isinstance(rule, str):
                out.append(CRule(concepts=[self.phrases([rule], fuzzy)]))
            elif isinstance(rule, AllOf):
                concepts = [self.phrases([c] if isinstance(c, str) else c, fuzzy) for c in rule.all]
                out.append(CRule(concepts=concepts, window=rule.window))
            elif isinstance(rule, RegexRule):
                out.append(CRule(regex=re.compile(rule.regex)))
        return out

    def _item(self, item: KeyPoint | Misconception, fuzzy: bool) -> CItem:
        partial = item.partial if isinstance(item, KeyPoint) else []
        return CItem(
            id=item.id,
            rules=self._rules(item.match, fuzzy),
            partial=self._rules(partial, fuzzy),
            exclude=self.phrases(item.exclude, fuzzy),
            exclude_window=item.exclude_window,
            ignore_negation=item.ignore_negation,
        )

    # ----------------------------------------------------------------- match
    def _fuzzy(self, word: str, word_stem: str) -> tuple[str, ...]:
        """Stems of rubric words that `word` is a typo of (one edit for 5+ letters, two for 9+)."""
        hit = self._fuzzy_memo.get(word)
        if hit is not None:
            return hit
        found: set[str] = set()
        if word.isalpha() and word not in self._exact_vocab and word_stem not in self._exact_vocab:
            for cand, dist, _ in process.extract(word, self._vocab, scorer=OSA.distance, score_cutoff=2, limit=None):
                if dist <= _allowed_edits(cand) and cand[0] == word[0] and (len(word) >= _FUZZY_MIN or len(cand) > _FUZZY_MIN):
                    found.add(self._vocab_stem[cand])
            # inflected typos: "dropuots" is one edit from "dropout" once both are stemmed
            for cand, dist, _ in process.extract(word_stem, self._stems, scorer=OSA.distance, score_cutoff=2, limit=None):
                if dist <= self._stem_budget[cand] and cand[0] == word[0] and (len(word) >= _FUZZY_MIN or len(cand) > _FUZZY_MIN):
                    found.add(cand)
        result = tuple(sorted(found))
        if len(self._fuzzy_memo) < 200_000:
            self._fuzzy_memo[word] = result
        return result

    def scan(self, norm: Normalized) -> _Scan:
        """The per-answer state for matching this rubric, built once and memoised on `norm`.

        The memo refers back to `norm` (a reference cycle): whoever owns `norm` empties
        `norm.cache` when done with it, as grade() does, or the garbage collector frees both.
        """
        # Keyed by the compiled rubric itself (held strongly), never by id(): ids are reused.
        cached: _Scan | None = norm.cache.get(self)
        if cached is not None:
            return cached
        toks = norm.tokens
        fuzzy_at: dict[int, tuple[str, ...]] = {}
        fuzzy_index: dict[str, list[int]] = {}
        if self._vocab:
            texts, stems = toks.text, toks.stem
            for i in toks.latin:
                word = texts[i]
                if len(word) >= _FUZZY_MIN - 1:
                    aliases = self._fuzzy(word, stems[i])
                    if aliases:
                        fuzzy_at[i] = aliases
                        for alias in aliases:
                            fuzzy_index.setdefault(alias, []).append(i)
        present = toks.cjk_keys.union(toks.index, toks.joined_index, fuzzy_index)
        possible = self._possible(toks, present)
        live = set(self._regex_rules)
        done: dict[int, set[int]] = {}
        single, multi = self._single, self._multi
        for uid in possible:
            rids = single.get(uid)
            if rids is not None:
                live.update(rids)
            pairs = multi.get(uid)
            if pairs is not None:
                for rid, k in pairs:
                    got_k = done.get(rid)
                    if got_k is None:
                        done[rid] = {k}
                    else:
                        got_k.add(k)
        n_concepts = self._n_concepts
        live.update(rid for rid, ks in done.items() if len(ks) == n_concepts[rid])
        got = _Scan(norm, fuzzy_at, fuzzy_index, {}, present, possible, live)
        norm.cache[self] = got
        return got

    def _possible(self, toks: Tokens, present: frozenset[str]) -> set[int]:
        """Uids of phrases that could occur: started by a present key, with every token present."""
        out: set[int] = set()
        stream = toks.cjk_stream
        for key in self._key_set & present:
            entry = self._by_key[key]
            out.update(entry.sure)
            for uid, run in entry.cjk:
                if run in stream:
                    out.add(uid)
            for uid, need in entry.other:
                if need.met(present, stream):
                    out.add(uid)
        if self._short_prefixes or self._prefix_head_set:
            candidates: list[tuple[str, list[int]]] = list(self._short_prefixes)
            for head in self._prefix_head_set & toks.heads():
                candidates.extend(self._prefix_heads[head])
            for prefix, uids in candidates:
                if not toks.has_prefix(prefix):
                    continue
                out.update(uid for uid in uids if self._phrase_needs[uid].met(present, stream))
        return out

    def char_spans(self, scan: _Scan, phrase: Phrase) -> list[Span]:
        """Character spans (normalised offsets) where `phrase` occurs in the answer."""
        got = scan.memo.get(phrase.uid)
        if got is None:
            got = self._find(scan, phrase)
            if phrase.tail:  # "O(1)": the closing bracket joins the evidence when the answer has it
                text, tail = scan.norm.text, phrase.tail
                got = [(s, e + len(tail)) if text.startswith(tail, e) else (s, e) for s, e in got]
            scan.memo[phrase.uid] = got
        return got

    def _find(self, scan: _Scan, phrase: Phrase) -> list[Span]:
        toks = scan.norm.tokens
        if phrase.cjk_run:
            return _cjk_spans(toks, phrase.cjk_run)
        first = phrase.toks[0]
        if first.prefix:
            starts: list[int] = toks.prefixed(first.text)
        elif first.cjk:
            starts = toks.cjk_positions(phrase.keys[0])
        else:
            at = toks.index.get(first.stem)
            joined = toks.joined_index.get(first.text)
            typos = scan.fuzzy_index.get(first.stem) if first.fuzzy else None
            if len(phrase.toks) == 1 and not joined and not typos:
                # one word found by its stem: every position is a match
                return [(toks.start[i], toks.end[i]) for i in at] if at else []
            starts = [*(at or ()), *(joined or ()), *(typos or ())]
        out: list[Span] = []
        for i in sorted(set(starts)) if len(starts) > 1 else starts:
            end = _match_at(toks, scan.fuzzy_at, phrase.toks, i)
            if end is not None:
                out.append((toks.start[i], toks.end[end - 1]))
        return out

    def concept_spans(self, scan: _Scan, concept: list[Phrase]) -> list[Span]:
        """Sorted spans of any of the concept's phrases (cheap first-token test before matching)."""
        present = scan.present
        found: list[Span] = []
        for p in concept:
            first = p.toks[0]
            if first.prefix or (first.fuzzy and first.stem in scan.fuzzy_index) or not present.isdisjoint(p.keys):
                found.extend(self.char_spans(scan, p))
        if len(found) > 1:
            found = sorted(set(found))
        return found

    def _concept_spans(self, scan: _Scan, rule: CRule, k: int) -> list[Span]:
        """Spans of concept `k` of `rule`: only its phrases that could occur are tried."""
        cid = rule.cids[k]
        memo = scan.concepts
        got = memo.get(cid)
        if got is not None:
            return got
        found: list[Span] = []
        phrase_of = self._phrase_of
        for uid in rule.uids[k] & scan.possible:
            found.extend(self.char_spans(scan, phrase_of[uid]))
        if len(found) > 1:
            found = sorted(set(found))
        memo[cid] = found
        return found

    def rule_hits(self, scan: _Scan, rule: CRule) -> list[Hit]:
        """Every match of one rule, each with its negation."""
        norm = scan.norm
        if rule.regex is not None:
            return [
                Hit(((m.start(), m.end()),), is_negated(norm, [m.span()], pattern=rule.regex.pattern))
                for m in rule.regex.finditer(norm.text)
                if m.end() > m.start()
            ]
        if rule.rid not in scan.live:
            return []  # some concept cannot occur: the rule cannot match
        occurrences: list[list[Span]] = []
        for k in range(len(rule.concepts)):
            found = self._concept_spans(scan, rule, k)
            if not found:
                return []
            occurrences.append(found)
        if len(occurrences) == 1:
            return [Hit((s,), is_negated(norm, [s])) for s in occurrences[0]]
        return _combine(norm, occurrences, rule.window)

    def item_hits(self, scan: _Scan, item: CItem, rules: list[CRule]) -> list[Hit]:
        """Matches of any of `rules`, less those voided by the item's exclusions."""
        live = scan.live
        hits = [h for rule in rules if rule.rid in live for h in self.rule_hits(scan, rule)]
        if hits and item.exclude:
            blocked = self.concept_spans(scan, item.exclude)
            hits = [h for h in hits if not _excluded(scan.norm, h, blocked, item.exclude_window)]
        if item.ignore_negation:
            hits = [Hit(h.parts, False) if h.negated else h for h in hits]
        return hits

    def judge_point(self, scan: _Scan, item: CItem) -> tuple[Status, float, list[Hit]]:
        """The status, credit and supporting hits for one key point."""
        hits = self.item_hits(scan, item, item.rules)
        good = [h for h in hits if not h.negated]
        if good:
            return "met", 1.0, good
        if hits:
            return "contradicted", 0.0, hits
        partial = [h for h in self.item_hits(scan, item, item.partial) if not h.negated] if item.partial else []
        if partial:
            return "partial", -1.0, partial  # credit filled in by the caller
        return "missing", 0.0, []


def compile_phrase(raw: str, *, fuzzy: bool = True, uid: int = 0) -> Phrase:
    """Compile one phrase: normalise, tokenise, mark prefix wildcards and fuzzy tokens."""
    text = normalize_text(raw.strip())
    toks: list[PTok] = []
    tt = tokenize(text)
    for word, st, end, cjk in zip(tt.text, tt.stem, tt.end, tt.cjk, strict=True):
        prefix = text[end : end + 1] == "*" and not cjk
        allow = fuzzy and not cjk and not prefix and word.isalpha() and len(word) >= _FUZZY_MIN
        toks.append(PTok(word, word if prefix else st, cjk, prefix, allow))
    tail = text[tt.end[-1] :].strip() if tt.end else ""
    return Phrase(raw, tuple(toks), uid, tail=tail if tail and set(tail) <= set("()[]{}<>\"'") else "")


def _joined_variant(phrase: Phrase) -> list[Phrase]:
    # "warm up" should match "warmup" too; the other direction is handled at match time.
    toks = phrase.toks
    if 2 <= len(toks) <= 3 and all(not t.cjk and not t.prefix and t.text.isalpha() for t in toks):
        joined = "".join(t.text for t in toks)
        s = stem(joined)
        return [Phrase(phrase.source, (PTok(joined, s, False, False, toks[0].fuzzy or len(s) >= _FUZZY_MIN),), phrase.uid + 1)]
    return []


def _cjk_spans(toks: Tokens, run: str) -> list[Span]:
    """Spans of a phrase of CJK tokens: found in the CJK stream, kept where its tokens are
    consecutive (no Latin word between) and no clause break separates them."""
    stream, pos, t_start, t_end, breaks = toks.cjk_stream, toks.cjk_pos, toks.start, toks.end, toks.breaks
    last_k = len(run) - 1
    out: list[Span] = []
    k = stream.find(run)
    while k >= 0:
        i, last = pos[k], pos[k + last_k]
        if last - i == last_k:
            b = bisect_left(breaks, t_end[i]) if breaks else 0
            if b >= len(breaks) or breaks[b] >= t_start[last]:
                out.append((t_start[i], t_end[last]))
        k = stream.find(run, k + 1)
    return out


def _match_at(toks: Tokens, fuzzy_at: dict[int, tuple[str, ...]], ptoks: tuple[PTok, ...], i: int) -> int | None:
    pos = i
    n = len(toks.stem)
    stems, texts, cjk, joined = toks.stem, toks.text, toks.cjk, toks.joined
    for k, pt in enumerate(ptoks):
        if pos >= n or (k > 0 and not toks.adjacent(pos)):
            return None
        if pt.cjk:
            if stems[pos] != pt.stem:
                return None
            pos += 1
        elif pt.prefix:
            if cjk[pos] or not texts[pos].startswith(pt.text):
                return None
            pos += 1
        elif stems[pos] == pt.stem or (pt.fuzzy and pt.stem in fuzzy_at.get(pos, ())):
            pos += 1
        elif joined[pos] is not None and joined[pos] in (pt.text, pt.stem) and toks.adjacent(pos + 1):
            pos += 2
        else:
            return None
    return pos


def _combine(norm: Normalized, occurrences: list[list[Span]], window: int) -> list[Hit]:
    """All-of: one occurrence per concept, all within `window` characters."""
    labelled = sorted((s, c) for c, occ in enumerate(occurrences) for s in occ)
    hits: dict[tuple[Span, ...], Hit] = {}
    k = len(occurrences)
    n = len(labelled)
    for idx in range(n):
        limit = labelled[idx][0][0] + window
        chosen: dict[int, Span] = {}
        for j in range(idx, n):
            span, concept = labelled[j]
            start, end = span
            if start > limit:
                break
            if end <= limit and concept not in chosen:
                for a, b in chosen.values():
                    if start < b and a < end:
                        break  # overlaps a part already chosen
                else:
                    chosen[concept] = span
                    if len(chosen) == k:
                        break
        if len(chosen) == k:
            parts = tuple(sorted(chosen.values()))
            if not same_sentence(norm, parts[0][0], max(e for _, e in parts) - 1):
                continue
            if parts not in hits:
                hits[parts] = Hit(parts, is_negated(norm, list(parts)))
        if len(hits) >= 8 and any(not h.negated for h in hits.values()):
            break  # enough for evidence, and at least one affirmative hit
    return list(hits.values())


def _excluded(norm: Normalized, hit: Hit, blocked: list[Span], window: int) -> bool:
    for s, e in blocked:
        if s < hit.end and hit.start < e:
            return True  # the exclusion overlaps the match ("leaky relu" vs "relu")
        # near any part of the match, in that part's clause (an all-of match may span clauses)
        for ps, pe in hit.parts:
            gap = s - pe if s >= pe else ps - e
            if gap <= window and same_clause(norm, min(s, ps), max(e, pe) - 1):
                return True
    return False


# --------------------------------------------------------------------------- public


def compiled(rubric: Rubric) -> CompiledRubric:
    """The compiled form of `rubric`, built once and kept on the rubric object."""
    cached: CompiledRubric | None = rubric._compiled
    if cached is None:
        cached = CompiledRubric(rubric)
        rubric._compiled = cached
    return cached


def evidence(norm: Normalized, spans: Iterable[Span], limit: int = 3) -> list[Evidence]:
    """Evidence in the original text: overlapping spans merged, in reading order, at most `limit`."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[Evidence] = []
    for start, end in merged[:limit]:
        s, e = norm.span(start, end)
        out.append(Evidence(start=s, end=e, text=norm.original[s:e]))
    return out


def match_points(rubric: Rubric, norm: Normalized) -> list[PointResult]:
    """The matcher's verdict on every key point of `rubric`."""
    comp = compiled(rubric)
    scan = comp.scan(norm)
    results: list[PointResult] = []
    for kp, item in zip(rubric.key_points, comp.points, strict=True):
        status, credit, hits = comp.judge_point(scan, item)
        if status == "partial":
            credit = kp.partial_credit
        results.append(PointResult(id=kp.id, status=status, credit=credit, weight=kp.weight, evidence=evidence(norm, _spans(hits))))
    return results


def match_misconceptions(rubric: Rubric, norm: Normalized, lang: str) -> list[MisconceptionHit]:
    """Misconceptions stated (not negated) in the answer."""
    comp = compiled(rubric)
    scan = comp.scan(norm)
    found: list[MisconceptionHit] = []
    for mc, item in zip(rubric.misconceptions, comp.misconceptions, strict=True):
        hits = [h for h in comp.item_hits(scan, item, item.rules) if not h.negated]
        if hits:
            found.append(
                MisconceptionHit(id=mc.id, penalty=mc.penalty, correction=mc.correction.get(lang), evidence=evidence(norm, _spans(hits)))
            )
    return found


def _spans(hits: list[Hit]) -> list[Span]:
    return [(h.start, h.end) for h in hits]
