"""Batch grading of a cohort: stream rows in, grade in parallel, append results durably, resume.

Data flows one way: input files → `Row`s (`read_rows`) → checks (bad rows go to errors.csv) →
dedupe on the normalised answer → matcher in worker processes → one line per row appended to
results.jsonl and results.csv → students.csv and report.html at the end.

Resume: every graded row is appended (and flushed) as soon as it is done, and every bad row is
appended to errors.csv. A rerun with the same --out reads both files, skips rows already there,
and grades the rest. `batch.json` pins the inputs, options and rubric versions; a change is an
error (`BatchConflict`), never a silent mix of old and new results.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import hashlib
import json
import math
import os
import re
import signal
import sys
import threading
import time
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _json_str  # the C escaper json.dumps uses for a str
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar

from .bank import Bank, load_bank
from .cost import Usage
from .errors import GraderError, InputError, UnknownRubricError
from .grade import grade_normalized
from .matcher import compiled
from .normalize import normalize_prefolded, normalize_text, offsets_kept
from .result import FLAG_TRUNCATED, GradeResult
from .rubric import Rubric

if TYPE_CHECKING:
    from .judge import DryRun, JudgeConfig

MANIFEST = "batch.json"
RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
STUDENTS_CSV = "students.csv"
ERRORS_CSV = "errors.csv"
REPORT_HTML = "report.html"

DEFAULT_MAX_CHARS = 5000
"""Answers longer than this are graded on their first DEFAULT_MAX_CHARS characters and flagged."""

FORMAT_VERSION = 1

ROLES = ("student", "question", "answer")
# Header names recognised without --columns (compared case-insensitively, spaces/underscores ignored).
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "student": ("student", "studentid", "student_id", "sid", "learner", "学号", "学生", "学生id", "考号"),
    "question": ("question", "questionid", "question_id", "qid", "rubric", "rubricid", "rubric_id", "题号", "题目", "题目id", "问题"),
    "answer": ("answer", "response", "text", "answertext", "答案", "回答", "作答", "答题内容"),
}

RESULTS_CSV_HEADER = ["source", "row", "student_id", "question_id", "score", "max_score", "percent", "missing", "flags", "needs_review"]
ERRORS_CSV_HEADER = ["source", "row", "student_id", "question_id", "error", "reason", "graded"]

# Error kinds written to errors.csv.
E_MISSING_STUDENT = "missing_student"
E_MISSING_QUESTION = "missing_question"
E_UNKNOWN_QUESTION = "unknown_question"
E_EMPTY_ANSWER = "empty_answer"
E_TOO_LONG = "too_long"
E_UNDECODABLE = "undecodable"
E_RAGGED = "ragged"
E_MALFORMED = "malformed"
E_GRADING_FAILED = "grading_failed"
E_JUDGE_FAILED = "judge_failed"
"""The judge could not score some points of this row (graded=yes: the matcher's verdicts stand, marked unscored)."""

_SURROGATE_RE = re.compile("[\udc80-\udcff]")
_ASCII = bytes(range(0x80))
# One GB18030 character per match, in decoding order; group 1 is set for a GB2312 pair (A1..F7, A1..FE).
_GB_CHAR_RE = re.compile(
    rb"([\xa1-\xf7][\xa1-\xfe])|[\x81-\xfe][\x30-\x39][\x81-\xfe][\x30-\x39]|[\x81-\xfe][\x40-\x7e\x80-\xfe]|[\x80-\xff]"
)
_L = TypeVar("_L", str, bytes)


class BatchConflict(InputError):
    """The output folder holds results from a different input, rubric or option set."""


# --------------------------------------------------------------------------- reading


@dataclass(slots=True)
class Row:
    """One input row. `problem` is set when the row cannot be graded as is."""

    src: int
    """Index of the input file in the command line."""
    row: int
    """Row number as a spreadsheet shows it (header = 1) or the JSONL line number."""
    student_id: str = ""
    question_id: str = ""
    answer: str = ""
    problem: tuple[str, str] | None = None
    """(error kind, reason) for a row that could not be read."""


def detect_encoding(path: Path, evidence: int = 1 << 18) -> str:
    """The text encoding of `path`: utf-8-sig (BOM), utf-16 (BOM), utf-8, or gb18030 (a superset of GBK).

    Reads the file until `evidence` non-ASCII bytes are seen (or to its end), in whole lines, and
    counts the non-ASCII bytes that form valid UTF-8 sequences and those that form GB2312 characters
    (both bytes in A1..FE, how GBK exports encode Chinese text and its full-width punctuation). Real
    GBK text is all GB2312 pairs and only about a third valid UTF-8 by chance; UTF-8 Chinese is all
    valid UTF-8 and only about a third GB2312 pairs by chance; stray bytes (Word's cp1252 quotes,
    a broken row) are neither. The larger count wins: a UTF-8 file with a few bad bytes stays UTF-8
    and a GBK file with a broken row stays GBK (either way only the bad rows are undecodable).
    """
    with path.open("rb") as f:
        head = f.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        f.seek(0)
        non_ascii = utf8_bad = gb_pairs = 0
        carry = b""
        while non_ascii < evidence:
            chunk = f.read(1 << 18)
            data = carry + chunk
            if chunk:  # judge whole lines: a chunk may end inside a character
                cut = data.rfind(b"\n") + 1 or len(data)
                data, carry = data[:cut], data[cut:]
            n = len(data.translate(None, _ASCII))
            if n:
                non_ascii += n
                utf8_bad += len(_SURROGATE_RE.findall(data.decode("utf-8", errors="surrogateescape")))
                gb_pairs += 2 * sum(1 for pair in _GB_CHAR_RE.findall(data) if pair)
            if not chunk:
                break
    if utf8_bad == 0:
        return "utf-8"
    return "gb18030" if gb_pairs > non_ascii - utf8_bad else "utf-8"


def rows_text(n: int, verb: tuple[str, str] | None = None) -> str:
    """`1 row`, `2 rows`; with `verb` ("was", "were"): `1 row was`, `2 rows were`."""
    text = f"{n} row" if n == 1 else f"{n} rows"
    return text if verb is None else f"{text} {verb[0] if n == 1 else verb[1]}"


def money(x: float) -> str:
    """Dollars for a message: `$2.00`, `$0.50`, `$0.015`, `$0.00001` (never `1e-05`)."""
    if x == round(x, 2):
        return f"${x:,.2f}"
    text = f"{x:,.8f}".rstrip("0")
    return f"${text}" if text.strip("0.,") else f"${x:.2g}"


def _canon(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).casefold()


def resolve_columns(header: list[str], columns: dict[str, str] | None, *, source: str) -> dict[str, int]:
    """Positions of the student, question and answer columns in `header`.

    Raises:
        InputError: a role has no column (names the file and lists the header).
    """
    canon = [_canon(h) for h in header]
    out: dict[str, int] = {}
    for role in ROLES:
        wanted = [columns[role]] if columns and role in columns else list(DEFAULT_COLUMNS[role])
        for name in wanted:
            if _canon(name) in canon:
                out[role] = canon.index(_canon(name))
                break
        else:
            shown = ", ".join(header) if header else "(empty)"
            if columns and role in columns:
                raise InputError(f"{source}: no column {columns[role]!r} for {role} (header: {shown})")
            raise InputError(f"{source}: no {role} column (header: {shown}); map one with --columns {role}=NAME")
    return out


def parse_columns(spec: str | None, roles: tuple[str, ...] = ROLES) -> dict[str, str] | None:
    """`student=学号,question=题号,answer=答案` → {"student": "学号", ...}; None when `spec` is empty.

    Raises:
        InputError: an unknown role (not in `roles`) or a malformed pair.
    """
    if not spec:
        return None
    out: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        role, sep, name = part.partition("=")
        role = role.strip()
        if not sep or not name.strip():
            raise InputError(f"--columns: expected ROLE=NAME, got {part!r}")
        if role not in roles:
            raise InputError(f"--columns: unknown role {role!r} (roles: {', '.join(roles)})")
        out[role] = name.strip()
    return out


def input_format(path: Path) -> str:
    """csv, tsv, jsonl or xlsx, from the file name.

    Raises:
        InputError: an unsupported extension.
    """
    suffix = path.suffix.lower()
    fmt = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx", ".xlsm": "xlsx"}.get(suffix)
    if fmt is None:
        raise InputError(f"{path}: unsupported input format {suffix or '(no extension)'!r}; use .csv, .tsv, .jsonl or .xlsx")
    return fmt


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() if not isinstance(value, str) else value


def undecodable_reason(encoding: str, *, detected: bool) -> str:
    """Why a row is undecodable: the encoding used, how it was chosen, and what to do."""
    how = "detected for this file" if detected else "given with --encoding"
    others = "utf-8, cp1252" if codecs.lookup(encoding).name in {"gbk", "gb18030", "gb2312"} else "gbk, cp1252"
    return f"bytes that are not valid {encoding} (the encoding {how}); if the file was saved in another, pass --encoding (e.g. {others})"


def _make_row(src: int, rowno: int, fields: list[str], cols: dict[str, int], width: int, undecodable: str) -> Row:
    if len(fields) != width:
        sid, qid = (fields[cols[r]].strip() if cols[r] < len(fields) else "" for r in ("student", "question"))
        return Row(
            src,
            rowno,
            _SURROGATE_RE.sub("?", sid),
            _SURROGATE_RE.sub("?", qid),
            problem=(E_RAGGED, f"{len(fields)} fields, the header has {width}"),
        )
    row = Row(src, rowno, fields[cols["student"]].strip(), fields[cols["question"]].strip(), fields[cols["answer"]])
    if any(_SURROGATE_RE.search(f) for f in (row.student_id, row.question_id, row.answer)):
        return Row(
            src,
            rowno,
            _SURROGATE_RE.sub("?", row.student_id),
            _SURROGATE_RE.sub("?", row.question_id),
            problem=(E_UNDECODABLE, undecodable),
        )
    return row


def _read_delimited(
    path: Path, src: int, delimiter: str, encoding: str, columns: dict[str, str] | None, *, detected: bool
) -> Iterator[Row]:
    csv.field_size_limit(1 << 24)
    undecodable = undecodable_reason(encoding, detected=detected)
    with path.open("r", encoding=encoding, errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{path}: the file is empty") from None
        except csv.Error as exc:
            raise InputError(f"{path}:1: unreadable header: {exc}") from None
        cols = resolve_columns([h.strip() for h in header], columns, source=str(path))
        rowno = 1
        while True:
            rowno += 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Row(src, rowno, problem=(E_MALFORMED, f"line {reader.line_num}: {exc}"))
                continue
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            yield _make_row(src, rowno, fields, cols, len(header), undecodable)


def _read_jsonl(path: Path, src: int, encoding: str, columns: dict[str, str] | None, *, detected: bool) -> Iterator[Row]:
    keys = {role: ([columns[role]] if columns and role in columns else list(DEFAULT_COLUMNS[role])) for role in ROLES}
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                yield Row(src, lineno, problem=(E_UNDECODABLE, undecodable_reason(encoding, detected=detected)))
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Row(src, lineno, problem=(E_MALFORMED, f"invalid JSON: {exc.msg} (column {exc.colno})"))
                continue
            if not isinstance(obj, dict):
                yield Row(src, lineno, problem=(E_MALFORMED, "a JSONL line must be an object"))
                continue
            canon = {_canon(k): v for k, v in obj.items()}
            vals: dict[str, str] = {}
            wrong: list[str] = []
            for role in ROLES:
                found = [canon[_canon(k)] for k in keys[role] if _canon(k) in canon]
                value = found[0] if found else None
                cell = _jsonl_text(value, id_field=role != "answer") if found else ""  # no such key: missing/empty
                if cell is None:
                    wrong.append(f"{role} is not a {'string' if role == 'answer' else 'string or number'} (got {_json_kind(value)})")
                vals[role] = cell or ""
            # An answer that is a number, list, object or null would be graded as its JSON text: a bad row.
            # Ids that are numbers (`"question": 3`) are fine and read as their text ("3").
            problem = (E_MALFORMED, "; ".join(wrong)) if wrong else None
            yield Row(src, lineno, vals["student"].strip(), vals["question"].strip(), "" if wrong else vals["answer"], problem=problem)


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _jsonl_text(value: object, *, id_field: bool) -> str | None:
    """A JSONL value as text: strings as they are, numbers too for ids; None when not acceptable."""
    if isinstance(value, str):
        return value
    if not id_field:
        return None
    if value is None:
        return ""  # a missing id (reported as missing_student / missing_question)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _read_xlsx(path: Path, src: int, columns: dict[str, str] | None) -> Iterator[Row]:
    import zipfile

    from openpyxl import load_workbook  # lazy: only xlsx inputs pay for it

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    try:
        ws = wb.active if wb.active is not None else wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header_cells = next(rows, None)
        if header_cells is None:
            raise InputError(f"{path}: the sheet is empty")
        header = [_cell(c).strip() for c in header_cells]
        while header and not header[-1]:
            header.pop()
        cols = resolve_columns(header, columns, source=str(path))
        for rowno, cells in enumerate(rows, start=2):
            fields = [_cell(c) for c in cells]
            if not any(f.strip() for f in fields):
                continue
            # Spreadsheets pad or trim trailing empty cells; only content past the header is ragged.
            if len(fields) > len(header) and any(f.strip() for f in fields[len(header) :]):
                yield Row(src, rowno, problem=(E_RAGGED, f"cells beyond the header's {len(header)} columns"))
                continue
            fields = (fields + [""] * len(header))[: len(header)]
            yield _make_row(src, rowno, fields, cols, len(header), "characters that are not valid text")
    finally:
        wb.close()


def read_rows(
    path: Path, *, src: int = 0, encoding: str | None = None, columns: dict[str, str] | None = None, detected: str | None = None
) -> Iterator[Row]:
    """Stream the rows of one input file (CSV, TSV, JSONL or XLSX).

    Rows that cannot be read (ragged, undecodable, malformed) come back with `problem` set.
    `encoding` is the user's (--encoding); else `detected`, when the caller already ran
    `detect_encoding`, else it is detected here.

    Raises:
        InputError: the file is missing, empty, of an unknown format, or lacks a required column.
    """
    fmt = input_format(path)
    if not path.is_file():
        raise InputError(f"input file not found: {path}")
    if fmt == "xlsx":
        yield from _read_xlsx(path, src, columns)
        return
    enc = encoding or detected or detect_encoding(path)
    if fmt == "jsonl":
        yield from _read_jsonl(path, src, enc, columns, detected=encoding is None)
    else:
        yield from _read_delimited(path, src, "," if fmt == "csv" else "\t", enc, columns, detected=encoding is None)


def count_rows(path: Path) -> int:
    """A quick row count for the progress bar (lines, less the header)."""
    if input_format(path) == "xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True)
        try:
            ws = wb.active if wb.active is not None else wb.worksheets[0]
            return max((ws.max_row or 1) - 1, 0)
        finally:
            wb.close()
    n = 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n if input_format(path) == "jsonl" else max(n - 1, 0)


def shard_of(row: Row, n: int) -> int:
    """The 0-based shard a row belongs to: by student (whole students stay together), else by row."""
    key = row.student_id or f"{row.src}:{row.row}"
    return zlib.crc32(key.encode("utf-8", "surrogateescape")) % n


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """`K/N` (1 <= K <= N) → (K, N).

    Raises:
        InputError: a malformed spec.
    """
    if not spec:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise InputError(f"--shard: expected K/N with 1 <= K <= N (e.g. 1/4), got {spec!r}")
    return int(m.group(1)), int(m.group(2))


# --------------------------------------------------------------------------- grading (worker side)

_BANK: Bank | None = None


def _init_worker(bank: Bank) -> None:
    """Set up a grading process. It is forked, so `bank` arrives as the parent holds it (rubrics
    already compiled included), not pickled."""
    global _BANK
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    _BANK = bank


def _die_with_parent() -> None:
    """On Linux, end this worker when the batch process dies (kill -9 leaves no orphan workers)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass
        if os.getppid() == 1:
            os._exit(0)  # the parent died before the call took effect


Task = tuple[int, str, str, bool, str | None, str | None]
"""(task id, question id, answer, truncated, lang, the answer's normalize_text() when it keeps offsets)."""
Graded = tuple[int, str, float, float, float, str, str, bool]
"""(task id, result JSON, score, max_score, percent, missing ids, flags, needs_review)."""


def grade_one(bank: Bank, task: Task) -> Graded:
    """Grade one task with the matcher; a truncated answer is flagged."""
    tid, qid, answer, truncated, lang, folded = task
    try:
        result = grade_normalized(bank[qid], normalize_prefolded(answer, folded), lang=lang)
    except Exception as exc:  # a bug on one answer must not stop the cohort: that row goes to errors.csv
        return (tid, "", 0.0, 0.0, 0.0, "", f"{type(exc).__name__}: {exc}", False)
    if truncated:
        result = result.model_copy(update={"flags": sorted({*result.flags, FLAG_TRUNCATED}), "needs_review": True})
    return _graded(tid, result)


def _graded(tid: int, result: GradeResult) -> Graded:
    return (
        tid,
        result.model_dump_json(),
        result.score,
        result.max_score,
        result.percent,
        " ".join(m.id for m in result.missing),
        " ".join(result.flags),
        result.needs_review,
    )


def _grade_tasks(tasks: list[Task]) -> list[Graded]:
    assert _BANK is not None
    return [grade_one(_BANK, t) for t in tasks]


# --------------------------------------------------------------------------- options, manifest, summary


class JudgeHook(Protocol):
    """What batch uses of the LLM judge's async client (`grader.judge.Judge`).

    Matcher results stream out of the worker pool as before; with a judge, each distinct answer
    is then awaited through `judge()` on an event loop in a background thread (at most
    `concurrency` requests in flight, at most 2 × concurrency answers in progress) before its
    rows are appended. The judge's cache makes a resumed run repeat no call; its budget and
    failure rules apply (a failed call = unscored points + needs_review).
    """

    concurrency: int
    usage: Usage

    @property
    def priced(self) -> bool: ...

    async def judge(
        self, rubric: Rubric, answer: str, matcher_result: GradeResult | None = None, *, lang: str | None = None
    ) -> GradeResult: ...

    async def aclose(self) -> None: ...


@dataclass
class BatchOptions:
    """Everything that decides what `run_batch` does."""

    inputs: list[Path]
    out: Path
    bank: Path | None = None
    lang: str | None = None
    workers: int = 0
    """Matcher processes; 0 = one per CPU, 1 = grade in this process."""
    encoding: str | None = None
    columns: dict[str, str] | None = None
    max_chars: int = DEFAULT_MAX_CHARS
    shard: tuple[int, int] | None = None
    restart: bool = False
    """Discard earlier results in `out` instead of resuming."""
    progress: bool | None = None
    """Show a progress bar; None = only on a terminal and when CI is not set."""
    report: bool = True
    """Write report.html at the end."""
    batch_size: int = 64
    dedupe_cache: int = 1024
    """How many distinct graded answers are kept in memory for dedupe."""
    dedupe_index: int = 1_000_000
    """How many more distinct answers are remembered by where their result is in results.jsonl
    (about 120 bytes each): a copy of one of them is read back from there, not graded again."""
    fsync_every: float = 1.0
    """Seconds between fsyncs of the result files (each line is written at once regardless)."""
    judge: JudgeConfig | None = None
    """The LLM judge's configuration (`grader.judge.JudgeConfig`); None = matcher only."""


@dataclass
class BatchSummary:
    """What a batch run did; `exit_code` is 0, or 3 when some rows could not be graded (or, with
    the judge, were graded with unscored points or left unjudged by --max-cost)."""

    out: Path
    rows: int = 0
    """Rows read in this shard (including earlier runs)."""
    graded: int = 0
    """Rows graded in this run."""
    resumed: int = 0
    """Rows skipped because an earlier run had done them."""
    unique: int = 0
    """Distinct answers actually sent to the matcher in this run."""
    errors: Counter[str] = field(default_factory=Counter)
    """Bad rows by kind, in this run and earlier ones."""
    failed: int = 0
    """Rows not graded at all (every error kind but too_long)."""
    truncated: int = 0
    needs_review: int = 0
    encodings: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    report: Path | None = None
    notes: list[str] = field(default_factory=list)
    judge_usage: Usage | None = None
    """What the judge spent in this run (None = matcher only)."""
    judge_priced: bool = True
    """False when the price table does not know the judge's model (cost shown as unknown)."""
    judge_failed: int = 0
    """Rows graded in this run with points the judge could not score (unscored; in errors.csv as judge_failed)."""
    judge_deferred: int = 0
    """Rows left ungraded in this run because --max-cost was reached (a rerun picks them up)."""

    @property
    def exit_code(self) -> int:
        incomplete = self.failed or self.judge_failed or self.judge_deferred or self.errors.get(E_JUDGE_FAILED)
        return 3 if incomplete else 0

    @property
    def rate(self) -> float:
        return self.graded / self.seconds if self.seconds > 0 else 0.0


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest(opts: BatchOptions, bank: Bank) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "inputs": [{"name": p.name, "path": str(p), "size": p.stat().st_size, "sha256": file_digest(p)} for p in opts.inputs],
        "options": {
            "lang": opts.lang,
            "encoding": opts.encoding,
            "columns": opts.columns,
            "max_chars": opts.max_chars,
            "engine": "matcher" if opts.judge is None else "judge",
            "judge": None if opts.judge is None else _judge_fingerprint(opts.judge),
        },
        "shard": list(opts.shard) if opts.shard else None,
        "bank": str(Path(bank.path).resolve()),
        "rubrics": {},
        "complete": False,
    }


def _judge_fingerprint(cfg: JudgeConfig) -> dict[str, Any]:
    """What decides the judge's verdicts (a change between runs would mix results). Not the
    budget, concurrency or cache, which a resumed run may change."""
    from .judge import Prompts, _public_url

    return {
        "model": cfg.model,
        "endpoint": _public_url(cfg.base_url),
        "policy": cfg.policy,
        "samples": cfg.samples,
        "temperature": cfg.sampling_temperature,
        "prompt_hash": Prompts.load().hash,
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(out: Path) -> dict[str, Any] | None:
    """batch.json in `out`, or None."""
    p = out / MANIFEST
    if not p.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: unreadable ({exc}); remove the folder or pass --restart") from None
    return data


def _shown(value: Any) -> str:
    return "(not given)" if value is None else repr(value)


def _conflicts(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out: list[str] = []
    old_in = [(i["name"], i["sha256"]) for i in old.get("inputs", [])]
    new_in = [(i["name"], i["sha256"]) for i in new["inputs"]]
    if [n for n, _ in old_in] != [n for n, _ in new_in]:
        out.append(f"inputs were {', '.join(n for n, _ in old_in)}; now {', '.join(n for n, _ in new_in)}")
    else:
        out += [
            f"input {n} changed since the earlier run (content differs)" for (n, a), (_, b) in zip(old_in, new_in, strict=True) if a != b
        ]
    for key, value in new["options"].items():
        if old.get("options", {}).get(key) != value:
            out.append(f"option {key} was {_shown(old.get('options', {}).get(key))}; now {_shown(value)}")
    if old.get("shard") != new["shard"]:
        out.append(f"shard was {old.get('shard')}; now {new['shard']}")
    return out


def _rubric_conflicts(recorded: dict[str, str], bank: Bank) -> list[str]:
    out = []
    for qid, version in sorted(recorded.items()):
        try:
            now = bank[qid].version
        except UnknownRubricError:
            out.append(f"rubric {qid} is no longer in the bank")
            continue
        if now != version:
            out.append(f"rubric {qid} changed (version {version} → {now})")
    return out


# --------------------------------------------------------------------------- durable journal


def _truncate_torn_tail(path: Path) -> None:
    """Drop a last line that a crash cut short (no trailing newline)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        size = f.seek(0, os.SEEK_END)
        pos = size
        while pos > 0:
            step = min(1 << 16, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            i = chunk.rfind(b"\n")
            if i >= 0:
                f.truncate(pos - step + i + 1)
                return
            pos -= step
        f.truncate(0)


def _whole_lines(lines: Iterable[_L]) -> Iterator[_L]:
    """The lines that end with a newline (a line a crash cut short can only be the last one)."""
    for line in lines:
        if line.endswith(b"\n" if isinstance(line, bytes) else "\n"):
            yield line


def _journal_keys(
    out: Path, *, repair: bool = True
) -> tuple[set[tuple[int, int]], dict[str, str], set[tuple[int, int]], Counter[str], int, int]:
    """Rows already done: graded keys, rubric versions used, error keys, error kinds, failed, truncated.

    `repair` cuts a line a crash left unfinished off the files; without it (dry run) such a line
    is only skipped and nothing is written.
    """
    done: set[tuple[int, int]] = set()
    versions: dict[str, str] = {}
    res = out / RESULTS_JSONL
    if res.exists():
        if repair:
            _truncate_torn_tail(res)
        with res.open("rb") as f:
            for lineno, line in enumerate(_whole_lines(f), start=1):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    raise InputError(f"{res}:{lineno}: corrupt line; pass --restart to start over") from None
                done.add((obj["src"], obj["row"]))
                r = obj["result"]
                versions.setdefault(r["rubric_id"], r["rubric_version"])
    err_keys: set[tuple[int, int]] = set()
    kinds: Counter[str] = Counter()
    failed = truncated = 0
    errp = out / ERRORS_CSV
    if errp.exists():
        if repair:
            _truncate_torn_tail(errp)
        names = {}
        man = read_manifest(out) or {}
        names = {i["name"]: n for n, i in enumerate(man.get("inputs", []))}
        with errp.open("r", encoding="utf-8-sig", newline="") as f:
            for rec in csv.DictReader(_whole_lines(f)):
                key = (names.get(rec["source"], 0), int(rec["row"]))
                if key in err_keys:
                    continue
                err_keys.add(key)
                kinds[rec["error"]] += 1
                if rec["graded"] == "yes":
                    truncated += rec["error"] == E_TOO_LONG
                else:
                    failed += 1
    return done, versions, err_keys, kinds, failed, truncated


class _Journal:
    """Append-only result files; each line is written at once, fsynced about every second."""

    def __init__(self, out: Path, fsync_every: float) -> None:
        # a large buffer: lines reach the file at each flush() (after every batch of results), not every few lines
        self.jsonl = (out / RESULTS_JSONL).open("ab", buffering=1 << 20)
        self.jsonl_pos = self.jsonl.seek(0, os.SEEK_END)
        """Byte offset where the next results.jsonl line starts."""
        self.flushed_pos = self.jsonl_pos
        """results.jsonl holds every byte before this offset (the rest may be in the write buffer)."""
        self._reader: BinaryIO | None = None
        new_csv = not (out / RESULTS_CSV).exists() or (out / RESULTS_CSV).stat().st_size == 0
        self.csv_f = (out / RESULTS_CSV).open("a", encoding="utf-8-sig" if new_csv else "utf-8", newline="")
        self.csv = csv.writer(self.csv_f)
        if new_csv:
            self.csv.writerow(RESULTS_CSV_HEADER)
        new_err = not (out / ERRORS_CSV).exists() or (out / ERRORS_CSV).stat().st_size == 0
        self.err_f = (out / ERRORS_CSV).open("a", encoding="utf-8-sig" if new_err else "utf-8", newline="")
        self.err = csv.writer(self.err_f)
        if new_err:
            self.err.writerow(ERRORS_CSV_HEADER)
        self.fsync_every = fsync_every
        self.last_sync = time.monotonic()

    def flush(self, *, sync: bool = False) -> None:
        for f in (self.jsonl, self.csv_f, self.err_f):
            f.flush()
        self.flushed_pos = self.jsonl_pos
        now = time.monotonic()
        if sync or now - self.last_sync >= self.fsync_every:
            for f in (self.jsonl, self.csv_f, self.err_f):
                os.fsync(f.fileno())
            self.last_sync = now

    def write_result(self, line: str) -> int:
        """Append one results.jsonl line; returns its byte offset."""
        data = line.encode("utf-8", "surrogateescape")
        at = self.jsonl_pos
        self.jsonl.write(data)
        self.jsonl_pos += len(data)
        return at

    def read_result(self, offset: int) -> bytes:
        """The results.jsonl line written at `offset`."""
        if offset >= self.flushed_pos:  # still in the write buffer (rare: results are flushed per batch)
            self.jsonl.flush()
            self.flushed_pos = self.jsonl_pos
        if self._reader is None:
            self._reader = open(self.jsonl.name, "rb")  # noqa: SIM115 - closed in close()
        self._reader.seek(offset)
        return self._reader.readline()

    def close(self) -> None:
        self.flush(sync=True)
        for f in (self.jsonl, self.csv_f, self.err_f):
            f.close()
        if self._reader is not None:
            self._reader.close()


def rebuild_results_csv(out: Path) -> None:
    """Rewrite results.csv from results.jsonl (after a crash the two may disagree)."""
    src = out / RESULTS_JSONL
    tmp = out / (RESULTS_CSV + ".tmp")
    with tmp.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(RESULTS_CSV_HEADER)
        if src.exists():
            for obj in iter_results(out):
                r = obj["result"]
                w.writerow(
                    [
                        obj["source"],
                        obj["row"],
                        obj["student_id"],
                        obj["question_id"],
                        r["score"],
                        r["max_score"],
                        r["percent"],
                        " ".join(m["id"] for m in r["missing"]),
                        " ".join(r["flags"]),
                        "yes" if r["needs_review"] else "",
                    ]
                )
    os.replace(tmp, out / RESULTS_CSV)


def iter_results(out: Path) -> Iterator[dict[str, Any]]:
    """Stream the lines of `out`/results.jsonl as dicts."""
    with (out / RESULTS_JSONL).open("rb") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def write_students_csv(out: Path) -> int:
    """students.csv from results.csv: totals per student and a score column per question. Returns rows written."""
    # Compact per student (a cohort can be large): [answers, score, max, needs review, {question index: score text}].
    per: dict[str, list[Any]] = {}
    q_index: dict[str, int] = {}
    texts: dict[str, str] = {}  # one string object per distinct score text
    with (out / RESULTS_CSV).open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        col = {name: i for i, name in enumerate(next(reader, RESULTS_CSV_HEADER))}
        c_sid, c_qid, c_score, c_max, c_review = (col[k] for k in ("student_id", "question_id", "score", "max_score", "needs_review"))
        for rec in reader:
            if not rec:
                continue
            s = per.get(rec[c_sid])
            if s is None:
                s = per[rec[c_sid]] = [0, 0.0, 0.0, 0, {}]
            s[0] += 1
            s[1] += float(rec[c_score])
            s[2] += float(rec[c_max])
            s[3] += rec[c_review] == "yes"
            score = rec[c_score]
            s[4][q_index.setdefault(rec[c_qid], len(q_index))] = texts.setdefault(score, score)
    qs = sorted(q_index)
    order = [q_index[q] for q in qs]
    tmp = out / (STUDENTS_CSV + ".tmp")
    with tmp.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "answers", "score", "max_score", "percent", "needs_review", *qs])
        for sid in sorted(per):
            answers, score_sum, max_sum, review, by_q = per[sid]
            pct = round(100 * score_sum / max_sum, 1) if max_sum else 0.0
            w.writerow([sid, answers, round(score_sum, 1), round(max_sum, 1), pct, review, *(by_q.get(i, "") for i in order)])
    os.replace(tmp, out / STUDENTS_CSV)
    return len(per)


# --------------------------------------------------------------------------- the run


class _Progress:
    """A rich progress bar (count, rate, ETA) or nothing."""

    def __init__(self, enabled: bool, total: int | None, label: str = "grading") -> None:
        self.bar: Any = None
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>7.0f} rows/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.bar.add_task(label, total=total, rate=0.0)
        self.t0 = time.monotonic()
        self.n = 0
        self.bar.start()

    def advance(self, n: int) -> None:
        if self.bar is None or n == 0:
            return
        self.n += n
        dt = time.monotonic() - self.t0
        self.bar.update(self.task, advance=n, rate=self.n / dt if dt > 0 else 0.0)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def progress_wanted(explicit: bool | None) -> bool:
    """Show a progress bar? Only on a terminal (stderr) and when CI is not set, unless forced."""
    if explicit is not None:
        return explicit
    return sys.stderr.isatty() and not os.environ.get("CI")


class _JudgeRunner:
    """The LLM judge on an event loop in a background thread; the main thread submits answers
    and collects results (all file writing stays in the main thread).

    The client and the thread start on the first answer, after the matcher pool has forked its
    workers (forking a process that runs threads can deadlock).
    """

    def __init__(self, config: JudgeConfig) -> None:
        from .judge import Prompts

        Prompts.load()  # a missing prompt file fails now, before any work
        self.config = config
        self.client: JudgeHook | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.limit = 2 * config.concurrency
        """Answers in progress at once; reading input pauses beyond this."""

    def submit(self, rubric: Rubric, answer: str, matcher_result: GradeResult, lang: str | None) -> Future[GradeResult]:
        if self.client is None:
            from .judge import Judge

            self.client = Judge(self.config)
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, name="grader-judge", daemon=True)
            self.thread.start()
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(self.client.judge(rubric, answer, matcher_result, lang=lang), self.loop)

    @property
    def usage(self) -> Usage:
        return self.client.usage if self.client is not None else Usage()

    @property
    def priced(self) -> bool:
        if self.client is not None:
            return self.client.priced
        from .cost import load_prices, price_of

        return price_of(self.config.model, load_prices(self.config.prices)) is not None

    def close(self) -> None:
        """Close the client and stop the loop (answers still in progress are cancelled)."""
        if self.loop is None or self.client is None:
            return
        with contextlib.suppress(Exception):  # closing must not hide the run's own outcome
            asyncio.run_coroutine_threadsafe(self.client.aclose(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(timeout=30)
        self.loop.close()
        self.loop = None


class _KnownQuestions:
    """Which question ids the bank knows (and the versions of those seen), asked once per id."""

    def __init__(self, bank: Bank) -> None:
        self.bank = bank
        self.known: dict[str, str | None] = {}  # question id -> None if known, else the reason
        self.versions: dict[str, str] = {}

    def question_problem(self, qid: str) -> str | None:
        """None for a question of the bank, else why not (with "did you mean")."""
        if qid not in self.known:
            try:
                self.versions[qid] = self.bank[qid].version
                self.known[qid] = None
            except UnknownRubricError as exc:
                self.known[qid] = str(exc).split(" (`grader list`")[0]
        return self.known[qid]


class _Run:
    """State of one batch run (kept out of `run_batch` so the loop reads top to bottom)."""

    def __init__(
        self, opts: BatchOptions, bank: Bank, journal: _Journal, summary: BatchSummary, names: list[str], err_keys: set[tuple[int, int]]
    ) -> None:
        self.opts = opts
        self.err_keys = err_keys
        self.bank = bank
        self.journal = journal
        self.summary = summary
        self.names = names
        self.questions = _KnownQuestions(bank)
        self.cache: OrderedDict[bytes, tuple[str, Graded]] = OrderedDict()
        self.offsets: dict[bytes, int] = {}
        """Dedupe key -> offset in results.jsonl of the line that holds its result."""
        self.raw_keys = _RecentKeys(RAW_KEYS)
        """A hash of the answer as written -> its dedupe key: exact copies skip normalisation."""
        self.pending: dict[bytes, list[tuple[Row, str]]] = {}
        self.batch: list[Task] = []
        self.batch_keys: list[bytes] = []
        self.task_ids: dict[int, bytes] = {}
        self.next_tid = 0
        self.on_done: Callable[[int], None] = lambda n: None
        self.judge: _JudgeRunner | None = None
        self.judging: dict[Future[GradeResult], tuple[bytes, bool]] = {}
        """Answers with the judge: future -> (dedupe key, truncated)."""

    def write_error(self, row: Row, kind: str, reason: str, *, graded: bool, err_keys: set[tuple[int, int]]) -> None:
        key = (row.src, row.row)
        if key not in err_keys:
            err_keys.add(key)
            self.journal.err.writerow(
                [self.names[row.src], row.row, row.student_id, row.question_id, kind, reason, "yes" if graded else "no"]
            )
            self.summary.errors[kind] += 1
            if graded:
                self.summary.truncated += kind == E_TOO_LONG
            else:
                self.summary.failed += 1

    def emit(self, row: Row, answer: str, rep_answer: str, g: Graded) -> int:
        """Write one graded row; returns the offset of its results.jsonl line."""
        result_json = g[1]
        if answer != rep_answer:
            result_json = _reanchor(result_json, answer)
        # _json_str is what json.dumps(s, ensure_ascii=False) returns for a str, without its overhead
        line = (
            f'{{"src":{row.src},"source":{_json_str(self.names[row.src])},"row":{row.row},"student_id":{_json_str(row.student_id)},'
            f'"question_id":{_json_str(row.question_id)},"answer":{_json_str(answer)},"result":{result_json}}}\n'
        )
        offset = self.journal.write_result(line)
        self.journal.csv.writerow(
            [self.names[row.src], row.row, row.student_id, row.question_id, g[2], g[3], g[4], g[5], g[6], "yes" if g[7] else ""]
        )
        self.summary.graded += 1
        self.summary.needs_review += g[7]
        self.on_done(1)
        return offset

    def finish(self, graded: list[Graded]) -> None:
        for g in graded:
            key = self.task_ids.pop(g[0])
            if not g[1]:  # grading raised: report every row that waited for it, keep going
                for row, _ in self.pending.pop(key):
                    self.write_error(row, E_GRADING_FAILED, f"grading failed: {g[6]}", graded=False, err_keys=self.err_keys)
                continue
            if self.judge is not None:
                row, answer = self.pending[key][0]
                fut = self.judge.submit(self.bank[row.question_id], answer, GradeResult.model_validate_json(g[1]), self.opts.lang)
                self.judging[fut] = (key, FLAG_TRUNCATED in g[6].split())
                continue
            self.complete(key, g)
        self.journal.flush()

    def complete(self, key: bytes, g: Graded, *, reuse: bool = True) -> None:
        """Write every row waiting for `key`; keep the result for later copies when `reuse`."""
        waiting = self.pending.pop(key)
        rep = waiting[0][1]
        first = self.emit(*waiting[0], rep, g)
        for row, answer in waiting[1:]:
            self.emit(row, answer, rep, g)
        if reuse:
            self.cache[key] = (rep, g)
            if len(self.cache) > self.opts.dedupe_cache:
                self.cache.popitem(last=False)
            if len(self.offsets) < self.opts.dedupe_index:
                self.offsets[key] = first

    def cached(self, key: bytes) -> tuple[str, Graded] | None:
        """(graded answer, result) of an answer graded earlier in this run, or None."""
        hit = self.cache.get(key)
        if hit is not None:
            self.cache.move_to_end(key)
            return hit
        offset = self.offsets.get(key)
        if offset is None:
            return None
        hit = _graded_from_line(self.journal.read_result(offset))
        self.cache[key] = hit
        if len(self.cache) > self.opts.dedupe_cache:
            self.cache.popitem(last=False)
        return hit

    def collect_judged(self, *, block: bool) -> None:
        """Write the rows of answers the judge has finished (waiting for one when `block`)."""
        if not self.judging:
            return
        finished, _ = wait(self.judging, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in finished:
            key, truncated = self.judging.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:  # a bug on one answer must not stop the cohort
                for row, _ in self.pending.pop(key):
                    self.write_error(row, E_GRADING_FAILED, f"judge: {type(exc).__name__}: {exc}", graded=False, err_keys=self.err_keys)
                continue
            usage = result.meta.get("usage")
            if isinstance(usage, dict) and usage.get("skipped_budget"):
                # --max-cost reached before this answer was judged: leave its rows for a rerun.
                self.summary.judge_deferred += len(self.pending.pop(key))
                continue
            if truncated:
                result = result.model_copy(update={"flags": sorted({*result.flags, FLAG_TRUNCATED}), "needs_review": True})
            info = result.meta.get("judge")
            unscored = info.get("unscored") if isinstance(info, dict) else None
            if unscored and isinstance(info, dict):
                errors = info.get("errors") or []
                why = str(errors[0]) if errors else "no verdict in the reply"
                reason = f"judge could not score {', '.join(sorted(unscored))}: {why}"
                for row, _ in self.pending[key]:
                    self.write_error(row, E_JUDGE_FAILED, reason, graded=True, err_keys=self.err_keys)
                self.summary.judge_failed += len(self.pending[key])
            # A failed judgement is not reused: a later copy of the answer asks again.
            self.complete(key, _graded(-1, result), reuse=not unscored)
        self.journal.flush()


def _graded_from_line(line: bytes) -> tuple[str, Graded]:
    """(answer, result) from a results.jsonl line this run wrote (the answer is the graded text)."""
    cut = line.index(b',"result":')  # every string before it is JSON-escaped, so this is the key
    result_json = line[cut + len(b',"result":') : line.rindex(b"}")].decode("utf-8", "surrogateescape")
    record = json.loads(line)
    r = record["result"]
    missing = " ".join(m["id"] for m in r["missing"])
    return record["answer"], (-1, result_json, r["score"], r["max_score"], r["percent"], missing, " ".join(r["flags"]), r["needs_review"])


def _reanchor(result_json: str, answer: str) -> str:
    """A deduped result for an answer that differs from the graded one only where normalisation
    keeps every offset (case, width, traditional/simplified): copy the evidence text from `answer`."""
    obj = json.loads(result_json)

    def fix(ev: list[dict[str, Any]]) -> None:
        for e in ev:
            e["text"] = answer[e["start"] : e["end"]]

    for p in obj["points"]:
        fix(p["evidence"])
    for m in obj["misconceptions"]:
        fix(m["evidence"])
    fix(obj.get("meta", {}).get("injection_evidence", []))
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


RAW_KEYS = 16_384
"""Answers as written remembered with their dedupe key, per generation (two are kept: about
130 bytes each, 4 MB at most). An exact copy of an older answer is normalised again, then
still found in the dedupe index."""


class _RecentKeys:
    """The dedupe keys of recently seen answers as written: a bounded map, two generations deep."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.young: dict[bytes, bytes] = {}
        self.old: dict[bytes, bytes] = {}

    def get(self, raw: bytes) -> bytes | None:
        got = self.young.get(raw)
        if got is None:
            got = self.old.get(raw)
            if got is not None:
                self.add(raw, got)  # still in use: keep it for the next generation
        return got

    def add(self, raw: bytes, key: bytes) -> None:
        if len(self.young) >= self.size:
            self.old, self.young = self.young, {}
        self.young[raw] = key


def _raw_key(qid: str, answer: str, truncated: bool) -> bytes:
    """A hash of the row as written: equal for exact copies, cheaper than normalising."""
    h = hashlib.blake2b(digest_size=16)
    h.update(qid.encode("utf-8", "surrogateescape"))
    h.update(b"\x00T" if truncated else b"\x00F")
    h.update(answer.encode("utf-8", "surrogateescape"))
    return h.digest()


def _task_key(qid: str, answer: str, truncated: bool) -> tuple[bytes, str | None]:
    """(key, folded): rows with the same key are graded once (the same question and, after
    normalisation, the same answer). `folded` is the normalised answer when it keeps every
    offset, so a grading process can skip folding it again; else None."""
    dkey, folded = _dedupe_key(qid, answer, truncated)
    if folded is None:
        # Evidence offsets of another spelling would not fit: share results only with this exact text.
        dkey = hashlib.blake2b(dkey + answer.encode("utf-8", "surrogateescape"), digest_size=16).digest()
    return dkey, folded


def _dedupe_key(qid: str, answer: str, truncated: bool) -> tuple[bytes, str | None]:
    """(key, folded): folded is the normalised answer, or None when normalisation moves offsets
    (changes the length, or composes a combining mark), so evidence offsets from another answer
    with the same key would not fit this one."""
    norm = normalize_text(answer)
    h = hashlib.blake2b(digest_size=16)
    h.update(qid.encode("utf-8", "surrogateescape"))
    h.update(b"\x00T" if truncated else b"\x00F")
    h.update(norm.encode("utf-8", "surrogateescape"))
    return h.digest(), norm if offsets_kept(answer, norm) else None


def check_out(opts: BatchOptions, bank: Bank) -> tuple[dict[str, Any], bool]:
    """Check `opts.out` without writing anything. Returns (manifest for this run, resuming).

    With `opts.restart` nothing there is looked at (a real run discards it).

    Raises:
        BatchConflict: the folder holds results of other inputs, options or rubric versions.
    """
    out = opts.out
    new = _manifest(opts, bank)
    if opts.restart:
        return new, False
    old = read_manifest(out)
    if old is None and out.exists() and any((out / n).exists() for n in (RESULTS_JSONL, ERRORS_CSV)):
        raise BatchConflict(f"{out} holds results but no {MANIFEST}; pass --restart to start over or pick another --out")
    results = out / RESULTS_JSONL
    if old is not None and not (results.exists() and results.stat().st_size > 0):
        old = None  # an earlier run that graded nothing (it failed at once): nothing to protect
    if old is not None:
        problems = _conflicts(old, new)
        if problems:
            raise BatchConflict(
                f"{out} holds results from a different run:\n  - "
                + "\n  - ".join(problems)
                + "\nResults are never mixed: pass --restart to discard them, or use another --out."
            )
        new["rubrics"] = old.get("rubrics", {})
        if old.get("judge_usage"):
            new["judge_usage"] = old["judge_usage"]
    return new, old is not None


def prepare_out(opts: BatchOptions, bank: Bank) -> tuple[dict[str, Any], bool]:
    """Create or check `opts.out` (discarding its results with `opts.restart`). Returns (manifest, resuming).

    Raises:
        BatchConflict: the folder holds results of other inputs, options or rubric versions.
    """
    if opts.restart:
        for name in (RESULTS_JSONL, RESULTS_CSV, ERRORS_CSV, STUDENTS_CSV, REPORT_HTML, MANIFEST):
            (opts.out / name).unlink(missing_ok=True)
    new, resuming = check_out(opts, bank)
    opts.out.mkdir(parents=True, exist_ok=True)
    _write_json(opts.out / MANIFEST, new)
    return new, resuming


def _check_options(opts: BatchOptions) -> None:
    """The checks made before any row is read (shared by the run and the dry run).

    Raises:
        InputError: no input, a missing or unsupported file, two inputs with one name, a bad option.
    """
    if opts.encoding:
        try:
            codecs.lookup(opts.encoding)
        except LookupError:
            raise InputError(f"--encoding: unknown encoding {opts.encoding!r}") from None
    if not opts.inputs:
        raise InputError("no input files")
    for p in opts.inputs:
        input_format(p)
        if not p.is_file():
            raise InputError(f"input file not found: {p}")
    names = [p.name for p in opts.inputs]
    if len(set(names)) != len(names):
        raise InputError("two inputs share a file name; rename one (rows are keyed by file name and row number)")
    if opts.max_chars < 1:
        raise InputError("--max-chars must be at least 1")


def _resume_state(
    out: Path, manifest: dict[str, Any], bank: Bank, *, repair: bool = True
) -> tuple[set[tuple[int, int]], dict[str, str], set[tuple[int, int]], Counter[str], int, int]:
    """`_journal_keys` of `out`, after checking the rubrics used so far are unchanged.

    Raises:
        BatchConflict: a rubric used by earlier results changed or left the bank.
    """
    journaled = _journal_keys(out, repair=repair)
    problems = _rubric_conflicts({**manifest.get("rubrics", {}), **journaled[1]}, bank)
    if problems:
        raise BatchConflict(
            f"{out} holds results graded with other rubric versions:\n  - "
            + "\n  - ".join(problems)
            + "\nResults are never mixed: pass --restart to regrade everything, or use another --out."
        )
    return journaled


def run_batch(opts: BatchOptions) -> BatchSummary:
    """Grade every row of `opts.inputs` into `opts.out`, resuming earlier work there.

    Returns the summary (its exit_code is 3 when some rows could not be graded).

    Raises:
        InputError: unreadable input, a missing column, bad options.
        BatchConflict: `opts.out` holds results of a different input, rubric or option set.
        KeyboardInterrupt: after flushing every finished result (rerun to resume).
    """
    t0 = time.monotonic()
    _check_options(opts)
    names = [p.name for p in opts.inputs]
    bank = load_bank(opts.bank)
    manifest, resuming = prepare_out(opts, bank)
    summary = BatchSummary(out=opts.out)
    done: set[tuple[int, int]] = set()
    err_keys: set[tuple[int, int]] = set()
    if resuming:
        done, _, err_keys, kinds, failed, truncated = _resume_state(opts.out, manifest, bank)
        summary.errors.update(kinds)
        summary.failed, summary.truncated = failed, truncated
        rebuild_results_csv(opts.out)
        if done:
            summary.notes.append(f"resumed: {rows_text(len(done), ('was', 'were'))} already graded")
    for p in opts.inputs:
        if input_format(p) != "xlsx":
            summary.encodings[p.name] = opts.encoding or detect_encoding(p)

    journal = _Journal(opts.out, opts.fsync_every)
    run = _Run(opts, bank, journal, summary, names, err_keys)
    if opts.judge is not None:
        run.judge = _JudgeRunner(opts.judge)
    show = progress_wanted(opts.progress)
    total = sum(count_rows(p) for p in opts.inputs) if show else None
    progress = _Progress(show, total)
    run.on_done = progress.advance
    workers = opts.workers or os.cpu_count() or 1
    pool: ProcessPoolExecutor | None = None
    in_flight: set[Future[list[Graded]]] = set()
    max_in_flight = max(2, workers * 3)
    precompiled = False  # the first batch's rubrics are compiled before the workers fork

    def submit() -> None:
        nonlocal precompiled
        if not run.batch:
            return
        tasks, run.batch = run.batch, []
        if pool is None:
            run.finish([grade_one(bank, t) for t in tasks])
            return
        while len(in_flight) >= max_in_flight:
            collect(block=True)
        if not precompiled:
            # The workers are forked at the first submit: compile the rubrics this batch needs
            # first, so each worker inherits them instead of compiling them again.
            precompiled = True
            for qid in {t[1] for t in tasks}:
                with contextlib.suppress(Exception):  # a rubric that cannot compile fails its rows in grade_one
                    compiled(bank[qid])
        in_flight.add(pool.submit(_grade_tasks, tasks))

    def collect(block: bool) -> None:
        if not in_flight:
            return
        finished, _ = wait(in_flight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in finished:
            in_flight.discard(fut)
            run.finish(fut.result())

    try:
        if workers > 1:
            import multiprocessing

            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker, initargs=(bank,))
        for row in _all_rows(opts, summary.encodings):
            summary.rows += 1
            key = (row.src, row.row)
            if key in done:
                summary.resumed += 1
                progress.advance(1)
                continue
            reason = _row_problem(run.questions, row)
            if reason is not None:
                run.write_error(row, reason[0], reason[1], graded=False, err_keys=err_keys)
                progress.advance(1)
                continue
            answer, too_long = _truncated(row.answer, opts.max_chars)
            truncated = too_long is not None
            if too_long is not None:
                run.write_error(row, E_TOO_LONG, too_long, graded=True, err_keys=err_keys)
            rkey = _raw_key(row.question_id, answer, truncated)
            dkey = run.raw_keys.get(rkey)
            folded = None
            if dkey is None:
                dkey, folded = _task_key(row.question_id, answer, truncated)
                run.raw_keys.add(rkey, dkey)
            hit = run.cached(dkey)
            if hit is not None:
                run.emit(row, answer, hit[0], hit[1])
                continue
            waiting = run.pending.get(dkey)
            if waiting is not None:
                waiting.append((row, answer))
                continue
            run.pending[dkey] = [(row, answer)]
            tid = run.next_tid
            run.next_tid += 1
            run.task_ids[tid] = dkey
            run.batch.append((tid, row.question_id, answer, truncated, opts.lang, folded))
            summary.unique += 1
            if len(run.batch) >= opts.batch_size:
                submit()
                collect(block=False)
            if run.judge is not None:
                run.collect_judged(block=False)
                while len(run.judging) >= run.judge.limit:
                    run.collect_judged(block=True)
        submit()
        while in_flight:
            collect(block=True)
        while run.judging:
            run.collect_judged(block=True)
    except BrokenProcessPool:
        raise GraderError("a grading process died (out of memory?); finished rows are saved, rerun the same command to resume") from None
    except KeyboardInterrupt:
        for fut in in_flight:
            fut.cancel()
        for jfut in run.judging:
            jfut.cancel()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            pool = None
        raise
    finally:
        progress.close()
        journal.close()
        if pool is not None:
            pool.shutdown()
        if run.judge is not None:
            run.judge.close()
    manifest["rubrics"] = {**manifest.get("rubrics", {}), **run.questions.versions}
    manifest["complete"] = True
    manifest["summary"] = {"rows": summary.rows, "failed": summary.failed, "errors": dict(summary.errors)}
    if run.judge is not None:
        summary.judge_usage, summary.judge_priced = run.judge.usage, run.judge.priced
        spent = Usage(**(manifest.get("judge_usage") or {}))
        spent.add(summary.judge_usage)
        manifest["judge_usage"] = spent.as_dict()  # every run on this folder, for the record
        if summary.judge_deferred:
            manifest["complete"] = False
            summary.notes.append(
                f"max cost reached: {rows_text(summary.judge_deferred, ('was', 'were'))} not judged and not in the results; "
                "rerun the same command (with a higher --max-cost) to grade them"
            )
        if summary.judge_failed:
            summary.notes.append(
                f"the judge could not score {rows_text(summary.judge_failed)}: their points are unscored (the matcher's verdict stands), "
                f"they are in the review queue and in {ERRORS_CSV} as {E_JUDGE_FAILED}"
            )
    _write_json(opts.out / MANIFEST, manifest)
    write_students_csv(opts.out)
    if opts.report:
        from .report import build_report

        summary.report = build_report(opts.out, lang=opts.lang, bank=bank)
    summary.seconds = time.monotonic() - t0
    return summary


def _all_rows(opts: BatchOptions, encodings: dict[str, str]) -> Iterator[Row]:
    """Every row of this shard; `encodings`: the encoding detected per file name (read once)."""
    for src, path in enumerate(opts.inputs):
        for row in read_rows(path, src=src, encoding=opts.encoding, columns=opts.columns, detected=encodings.get(path.name)):
            if opts.shard is None or shard_of(row, opts.shard[1]) == opts.shard[0] - 1:
                yield row


def _truncated(answer: str, max_chars: int) -> tuple[str, str | None]:
    """(the answer as graded, the too_long reason or None): long answers are graded on their start."""
    if len(answer) <= max_chars:
        return answer, None
    return answer[:max_chars], f"{len(answer)} characters; graded on the first {max_chars}"


def _row_problem(known: _KnownQuestions, row: Row) -> tuple[str, str] | None:
    if row.problem is not None:
        return row.problem
    if not row.question_id:
        return (E_MISSING_QUESTION, "no question id")
    if not row.student_id:
        return (E_MISSING_STUDENT, "no student id")
    why = known.question_problem(row.question_id)
    if why is not None:
        return (E_UNKNOWN_QUESTION, why)
    if not row.answer.strip():
        return (E_EMPTY_ANSWER, "the answer is empty")
    return None


# --------------------------------------------------------------------------- dry run


@dataclass
class QuestionPlan:
    """One question's rows in a dry run."""

    rows: int = 0
    """Readable rows for this question (graded, to grade, or too long)."""
    done: int = 0
    """Rows already in results.jsonl (resume skips them)."""
    to_grade: int = 0
    """Rows the run would grade."""
    unique: int = 0
    """Distinct answers among them (identical ones are graded once)."""
    bad: int = 0
    """Rows naming this question that cannot be graded (empty answer, ragged, undecodable …)."""


DRY_RUN_SHOWN = 20
"""Bad rows a dry run lists by name (all are counted)."""


@dataclass
class BadRow:
    """A row a run would list in errors.csv."""

    source: str
    row: int
    student_id: str
    question_id: str
    error: str
    reason: str
    graded: bool


@dataclass
class DryRunSummary:
    """What `grader batch` would do with these options, found without grading, calling or writing anything."""

    out: Path
    rows: int = 0
    """Rows read in this shard."""
    resumed: int = 0
    """Rows already graded in --out (a real run skips them)."""
    to_grade: int = 0
    """Rows a real run would grade now (truncated ones included)."""
    unique: int = 0
    """Distinct answers among them: what the matcher (and the judge) would see."""
    errors: Counter[str] = field(default_factory=Counter)
    """Bad rows by kind, as the run's errors.csv would list them (earlier runs' included)."""
    failed: int = 0
    """Rows a real run could not grade (every error kind but too_long)."""
    truncated: int = 0
    """Answers longer than --max-chars (graded on their first --max-chars characters)."""
    questions: dict[str, QuestionPlan] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)
    """The first DRY_RUN_SHOWN bad rows of the input (this read's, whether or not an earlier run listed them)."""
    bad_found: int = 0
    """Bad rows found in this read (bad_rows holds the first of them)."""
    encodings: dict[str, str] = field(default_factory=dict)
    resuming: bool = False
    """--out holds an earlier run of this command that a real run would resume."""
    discarded: int = 0
    """With --restart: graded rows in --out a real run would throw away."""
    judge: DryRun | None = None
    """With --judge: the estimated requests, tokens and cost (`Judge.dry_run`)."""
    max_cost: float | None = None
    """With --judge: the --max-cost the run would stop at."""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def deduplicated(self) -> int:
        """Rows to grade that repeat an answer graded once for them."""
        return self.to_grade - self.unique

    @property
    def over_budget(self) -> bool:
        """The judge's estimated cost passes --max-cost: the run would stop judging before the end."""
        return self.judge is not None and self.max_cost is not None and self.judge.priced and self.judge.cost > self.max_cost

    @property
    def exit_code(self) -> int:
        """What the real run would exit with: 3 when some rows could not be graded (or, with the
        judge, an earlier run left judge_failed rows, or the estimate passes --max-cost), else 0."""
        return 3 if self.failed or self.errors.get(E_JUDGE_FAILED) or self.over_budget else 0


def dry_run_batch(opts: BatchOptions) -> DryRunSummary:
    """Read and check every row of `opts.inputs` as `run_batch` would, without grading or writing.

    Counts rows per question, bad rows (the same checks as a run), identical answers, rows already
    done in `opts.out`; with `opts.judge`, estimates the judge's requests, tokens and cost
    (`Judge.dry_run`: the matcher runs here, cached replies are free, no request is sent).
    Nothing is created in `opts.out`, not even the folder.

    Raises:
        InputError: unreadable input, a missing column, bad options (as `run_batch`).
        BatchConflict: `opts.out` holds results of a different input, rubric or option set.
    """
    t0 = time.monotonic()
    _check_options(opts)
    bank = load_bank(opts.bank)
    manifest, resuming = check_out(opts, bank)
    s = DryRunSummary(out=opts.out, resuming=resuming)
    done: set[tuple[int, int]] = set()
    err_keys: set[tuple[int, int]] = set()
    if resuming:
        done, _, err_keys, kinds, s.failed, s.truncated = _resume_state(opts.out, manifest, bank, repair=False)
        s.errors.update(kinds)
    elif opts.restart and (opts.out / RESULTS_JSONL).is_file():
        with (opts.out / RESULTS_JSONL).open("rb") as f:
            s.discarded = sum(1 for _ in _whole_lines(f))
    for p in opts.inputs:
        if input_format(p) != "xlsx":
            s.encodings[p.name] = opts.encoding or detect_encoding(p)
    known = _KnownQuestions(bank)
    # The run remembers up to `dedupe_cache + dedupe_index` distinct answers; so does this count.
    seen: set[bytes] = set()
    show = progress_wanted(opts.progress)
    progress = _Progress(show, sum(count_rows(p) for p in opts.inputs) if show else None, label="checking")

    def error(row: Row, kind: str, reason: str, *, graded: bool) -> None:
        s.bad_found += 1
        if len(s.bad_rows) < DRY_RUN_SHOWN:
            s.bad_rows.append(BadRow(opts.inputs[row.src].name, row.row, row.student_id, row.question_id, kind, reason, graded))
        key = (row.src, row.row)
        if key not in err_keys:  # already in errors.csv: a resumed run does not count it twice
            err_keys.add(key)
            s.errors[kind] += 1
            if graded:
                s.truncated += kind == E_TOO_LONG
            else:
                s.failed += 1

    def planned() -> Iterator[tuple[Rubric, str]]:
        """(rubric, answer) of each distinct answer the run would grade, in input order."""
        for row in _all_rows(opts, s.encodings):
            s.rows += 1
            progress.advance(1)
            if (row.src, row.row) in done:
                s.resumed += 1
                q = s.questions.setdefault(row.question_id, QuestionPlan())
                q.rows += 1
                q.done += 1
                continue
            problem = _row_problem(known, row)
            if problem is not None:
                error(row, *problem, graded=False)
                if row.question_id and known.question_problem(row.question_id) is None:
                    q = s.questions.setdefault(row.question_id, QuestionPlan())
                    q.rows += 1
                    q.bad += 1
                continue
            answer, too_long = _truncated(row.answer, opts.max_chars)
            truncated = too_long is not None
            if too_long is not None:
                error(row, E_TOO_LONG, too_long, graded=True)
            s.to_grade += 1
            q = s.questions.setdefault(row.question_id, QuestionPlan())
            q.rows += 1
            q.to_grade += 1
            key = _task_key(row.question_id, answer, truncated)[0]
            if key in seen:
                continue
            if len(seen) < opts.dedupe_cache + opts.dedupe_index:
                seen.add(key)
            s.unique += 1
            q.unique += 1
            yield bank[row.question_id], answer

    try:
        if opts.judge is None:
            for _ in planned():
                pass
        else:
            from .judge import Judge

            client = Judge(opts.judge)  # no HTTP client until a request is sent; dry_run sends none
            try:
                s.judge = client.dry_run(planned(), lang=opts.lang)
            finally:
                asyncio.run(client.aclose())
            s.max_cost = opts.judge.max_cost
    finally:
        progress.close()
    if s.discarded:
        s.notes.append(f"--restart: {rows_text(s.discarded)} already graded in {opts.out} would be discarded and graded again")
    s.seconds = time.monotonic() - t0
    return s


def format_dry_run(s: DryRunSummary) -> str:
    """The dry run's summary for the terminal."""
    errors = ", ".join(f"{k} {v}" for k, v in sorted(s.errors.items())) or "none"
    lines = [
        f"dry run: nothing graded, nothing written to {s.out}/",
        f"rows: {s.rows}  already done: {s.resumed}  to grade: {s.to_grade}  "
        f"distinct answers: {s.unique}  identical copies graded once: {s.deduplicated}",
        f"bad rows: {sum(s.errors.values())} ({errors})  not graded: {s.failed}  truncated: {s.truncated}",
    ]
    if s.encodings:
        lines.append("encodings: " + ", ".join(f"{k} {v}" for k, v in s.encodings.items()))
    if s.questions:
        width = max(8, *(len(q) for q in s.questions))
        lines.append(f"  {'question':<{width}} {'rows':>7} {'done':>7} {'to grade':>9} {'distinct':>9} {'bad':>6}")
        for qid in sorted(s.questions):
            q = s.questions[qid]
            lines.append(f"  {qid:<{width}} {q.rows:>7} {q.done:>7} {q.to_grade:>9} {q.unique:>9} {q.bad:>6}")
    if s.bad_rows:
        lines.append("bad rows (a run lists them all in errors.csv):")
        for b in s.bad_rows:
            graded = ", graded" if b.graded else ""
            lines.append(f"  {b.source}:{b.row} {b.error}{graded}: {b.reason}")
        if s.bad_found > len(s.bad_rows):
            lines.append(f"  … and {s.bad_found - len(s.bad_rows)} more")
    if s.judge is not None:
        lines.append("judge " + s.judge.summary())
    lines += s.notes
    if s.over_budget and s.judge is not None and s.max_cost is not None:
        lines.append(
            f"the estimate (~{money(s.judge.cost)}) passes --max-cost {money(s.max_cost)}: a run would stop calling the judge "
            "before the end and leave the rows still waiting for it out of the results, for a rerun with a higher --max-cost"
        )
    if s.exit_code:
        why = []
        if s.failed:
            why.append(f"{rows_text(s.failed)} could not be graded (listed in {ERRORS_CSV})")
        if s.errors.get(E_JUDGE_FAILED):
            n = s.errors[E_JUDGE_FAILED]
            why.append(f"{rows_text(n, ('has', 'have'))} unscored points (listed in {ERRORS_CSV} as {E_JUDGE_FAILED})")
        if s.over_budget:
            why.append("--max-cost would leave rows unjudged")
        lines.append(f"a run would exit {s.exit_code}: " + "; ".join(why))
    else:
        lines.append("a run would exit 0: every row can be graded")
    return "\n".join(lines)


# --------------------------------------------------------------------------- merge


def merge(
    dirs: Iterable[Path], out: Path, *, allow_partial: bool = False, lang: str | None = None, bank_path: Path | None = None
) -> BatchSummary:
    """Combine the outputs of `grader batch --shard K/N` runs into `out`.

    Returns the summary of the merged cohort.

    Raises:
        InputError: a folder is not a finished batch, the shards come from different inputs,
            options or rubric versions, a shard appears twice, or (unless allow_partial) one is missing.
    """
    t0 = time.monotonic()
    dirs = list(dirs)
    if not dirs:
        raise InputError("merge: no folders given")
    manifests = []
    for d in dirs:
        m = read_manifest(d)
        if m is None:
            raise InputError(f"{d}: no {MANIFEST}; not a `grader batch` output folder")
        if not m.get("complete"):
            raise InputError(f"{d}: the batch there did not finish; rerun its `grader batch` command to resume it first")
        manifests.append(m)
    first = manifests[0]
    seen_shards: dict[int, Path] = {}
    rubrics: dict[str, str] = {}
    n_total = None
    for d, m in zip(dirs, manifests, strict=True):
        if [i["sha256"] for i in m["inputs"]] != [i["sha256"] for i in first["inputs"]]:
            raise InputError(f"{d}: graded other input files than {dirs[0]}; shards must come from the same inputs")
        if m["options"] != first["options"]:
            raise InputError(f"{d}: graded with other options than {dirs[0]} ({m['options']} vs {first['options']})")
        for qid, v in m.get("rubrics", {}).items():
            if rubrics.setdefault(qid, v) != v:
                raise InputError(f"{d}: rubric {qid} has version {v}, another shard {rubrics[qid]}; regrade that shard")
        shard = m.get("shard") or [1, 1]
        if n_total is None:
            n_total = shard[1]
        elif shard[1] != n_total:
            raise InputError(f"{d}: shard {shard[0]}/{shard[1]} does not fit /{n_total}")
        if shard[0] in seen_shards:
            raise InputError(f"{d}: shard {shard[0]}/{shard[1]} is also in {seen_shards[shard[0]]}")
        seen_shards[shard[0]] = d
    assert n_total is not None
    missing = [k for k in range(1, n_total + 1) if k not in seen_shards]
    if missing and not allow_partial:
        raise InputError(f"merge: missing shards {', '.join(f'{k}/{n_total}' for k in missing)} (pass --partial to merge anyway)")
    out.mkdir(parents=True, exist_ok=True)
    if any((out / n).exists() for n in (RESULTS_JSONL, ERRORS_CSV)) and out.resolve() not in {d.resolve() for d in dirs}:
        for n in (RESULTS_JSONL, RESULTS_CSV, ERRORS_CSV, STUDENTS_CSV, REPORT_HTML, MANIFEST):
            (out / n).unlink(missing_ok=True)
    summary = BatchSummary(out=out)
    seen: set[tuple[int, int]] = set()
    tmp_res = out / (RESULTS_JSONL + ".tmp")
    with tmp_res.open("wb") as w:
        for d in dirs:
            with (d / RESULTS_JSONL).open("rb") as f:
                for line in f:
                    if not line.endswith(b"\n"):
                        continue
                    head = json.loads(line)
                    key = (head["src"], head["row"])
                    if key in seen:
                        continue
                    seen.add(key)
                    w.write(line)
                    summary.graded += 1
                    summary.needs_review += bool(head["result"]["needs_review"])
    os.replace(tmp_res, out / RESULTS_JSONL)
    tmp_err = out / (ERRORS_CSV + ".tmp")
    err_seen: set[tuple[str, str]] = set()
    with tmp_err.open("w", encoding="utf-8-sig", newline="") as w_err:
        ew = csv.writer(w_err)
        ew.writerow(ERRORS_CSV_HEADER)
        for d in dirs:
            if not (d / ERRORS_CSV).exists():
                continue
            with (d / ERRORS_CSV).open("r", encoding="utf-8-sig", newline="") as f:
                for rec in csv.DictReader(f):
                    k = (rec["source"], rec["row"])
                    if k in err_seen:
                        continue
                    err_seen.add(k)
                    ew.writerow([rec[c] for c in ERRORS_CSV_HEADER])
                    summary.errors[rec["error"]] += 1
                    if rec["graded"] == "yes":
                        summary.truncated += rec["error"] == E_TOO_LONG
                    else:
                        summary.failed += 1
    os.replace(tmp_err, out / ERRORS_CSV)
    summary.rows = summary.graded + summary.failed
    merged = dict(first)
    merged.update({"shard": None, "rubrics": rubrics, "complete": True, "merged_from": [str(d) for d in dirs], "missing_shards": missing})
    merged["summary"] = {"rows": summary.rows, "failed": summary.failed, "errors": dict(summary.errors)}
    _write_json(out / MANIFEST, merged)
    rebuild_results_csv(out)
    write_students_csv(out)
    from .report import build_report

    bank = None
    try:
        bank = load_bank(bank_path or first.get("bank"))
    except GraderError:
        summary.notes.append("the bank is not reachable here; the report shows key point ids without statements")
    summary.report = build_report(out, lang=lang, bank=bank)
    if missing:
        summary.notes.append(f"partial merge: shards {', '.join(f'{k}/{n_total}' for k in missing)} are missing")
    summary.seconds = time.monotonic() - t0
    return summary


def format_summary(s: BatchSummary) -> str:
    """A few lines for the terminal."""
    lines = [
        f"rows: {s.rows}  graded now: {s.graded}  already done: {s.resumed}  distinct answers graded: {s.unique}",
        f"errors: {sum(s.errors.values())} ({', '.join(f'{k} {v}' for k, v in sorted(s.errors.items())) or 'none'})  "
        f"not graded: {s.failed}  truncated: {s.truncated}  needs review: {s.needs_review}",
    ]
    if s.encodings:
        lines.append("encodings: " + ", ".join(f"{k} {v}" for k, v in s.encodings.items()))
    if s.seconds:
        lines.append(f"time: {s.seconds:.1f} s ({s.rate:,.0f} rows/s)")
    if s.judge_usage is not None:
        lines.append(s.judge_usage.summary(priced=s.judge_priced))
    lines += s.notes
    lines.append(
        f"outputs: {s.out}/ ({RESULTS_JSONL}, {RESULTS_CSV}, {STUDENTS_CSV}, {ERRORS_CSV}{', ' + REPORT_HTML if s.report else ''})"
    )
    return "\n".join(lines)
