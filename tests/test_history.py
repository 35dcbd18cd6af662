"""The practice history (real sqlite files), the scheduler's rule, and `grader progress`."""

from __future__ import annotations

import csv
import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import Rubric, grade, load_bank
from grader.cli import main
from grader.history import (
    SCHEMA_VERSION,
    Attempt,
    HistoryError,
    HistoryLockedError,
    HistoryMissingError,
    PointRecord,
    default_db_path,
    open_history,
    pending_files,
)
from grader.progress import daily_trend, export, render_progress, weakest_points
from grader.scheduler import DAY, INTERVALS, MINUTE, next_level, pick, states

BANK = Path(__file__).parent / "data" / "practice" / "bank"


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_bank(BANK)["dropout-basics"]


def attempt(
    qid: str, percent: float, ts: float, *, round_id: str | None = None, try_no: int = 1, missed: tuple[str, ...] = (), **kw: object
) -> Attempt:
    points = [
        PointRecord(id=p, status="missing" if p in missed else "met", credit=0.0 if p in missed else 1.0, weight=1.0) for p in ("a", "b")
    ]
    return Attempt(
        ts=ts,
        rubric_id=qid,
        rubric_version="v",
        answer=f"answer {percent}",
        score=percent,
        max_score=100,
        percent=percent,
        round_id=round_id or f"r-{qid}-{ts}",
        try_no=try_no,
        points=points,
        **kw,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- the database


def test_record_and_read_back_a_graded_attempt(tmp_path: Path, rubric: Rubric) -> None:
    result = grade(rubric, "Dropout randomly drops units while training. 推理时也随机丢弃。")
    db = tmp_path / "h.sqlite3"
    with open_history(db) as h:
        saved = h.record(Attempt.from_result(result, "the answer", round_id="r1", try_no=1, hints_used=2))
        assert saved.id is not None
    with open_history(db) as h:
        (back,) = h.attempts()
    assert back.rubric_id == "dropout-basics"
    assert back.percent == result.percent
    assert back.met == ["random-drop"]
    assert set(back.missed) == {"regularize", "inference-off"}
    assert back.misconceptions == ["on-at-inference"]
    assert (back.round_id, back.try_no, back.hints_used, back.saw_answer) == ("r1", 1, 2, False)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_default_path_is_in_the_user_data_folder_or_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADER_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_path() == tmp_path / "data" / "grader" / "history.sqlite3"
    monkeypatch.setenv("GRADER_DB", str(tmp_path / "mine.db"))
    assert default_db_path() == tmp_path / "mine.db"
    with open_history() as h:
        assert h.path == tmp_path / "mine.db"
    assert (tmp_path / "mine.db").exists()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is a text file, not a database\n" * 20, id="not-sqlite"),
        pytest.param(b"SQLite format 3\x00" + b"\xff" * 4000, id="garbage-after-header"),
    ],
)
def test_a_damaged_database_gives_a_clear_error_and_is_left_unchanged(tmp_path: Path, content: bytes) -> None:
    db = tmp_path / "h.sqlite3"
    db.write_bytes(content)
    with pytest.raises(HistoryError) as info:
        open_history(db)
    message = str(info.value)
    assert str(db) in message and "damaged" in message and "--db" in message
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.sqlite3"]


def test_a_database_with_a_damaged_page_is_reported_not_rewritten(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    with open_history(db) as h:
        h.pending.extend(attempt("q", 50, 1000 + i) for i in range(300))
        h.flush()  # one transaction
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    raw = bytearray(db.read_bytes())
    page = 4096
    raw[2 * page : 3 * page] = b"\x07" * page  # scribble over a b-tree page
    db.write_bytes(bytes(raw))
    with pytest.raises(HistoryError, match="damaged"):
        open_history(db)
    assert db.read_bytes() == bytes(raw)


def test_a_newer_layout_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(HistoryError, match="newer grader"):
        open_history(db)


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="folder"):
        open_history(tmp_path)


V1_SQL = """
CREATE TABLE attempts (id INTEGER PRIMARY KEY, ts REAL NOT NULL, rubric_id TEXT NOT NULL, rubric_version TEXT NOT NULL,
  answer TEXT NOT NULL, score REAL NOT NULL, max_score REAL NOT NULL, percent REAL NOT NULL,
  language TEXT NOT NULL DEFAULT 'unknown', engine TEXT NOT NULL DEFAULT 'matcher');
CREATE TABLE attempt_points (attempt_id INTEGER NOT NULL REFERENCES attempts(id), point_id TEXT NOT NULL, status TEXT NOT NULL,
  credit REAL NOT NULL, weight REAL NOT NULL, PRIMARY KEY (attempt_id, point_id));
CREATE INDEX attempts_by_question ON attempts(rubric_id, ts);
INSERT INTO attempts VALUES (1, 1000.0, 'dropout-basics', 'abc', 'old answer 一', 40, 100, 40, 'mixed', 'matcher');
INSERT INTO attempts VALUES (2, 2000.0, 'dropout-basics', 'abc', 'old answer 二', 90, 100, 90, 'en', 'matcher');
INSERT INTO attempt_points VALUES (1, 'random-drop', 'met', 1, 40), (1, 'regularize', 'missing', 0, 30);
INSERT INTO attempt_points VALUES (2, 'random-drop', 'met', 1, 40), (2, 'regularize', 'met', 1, 30);
PRAGMA user_version = 1;
"""


def test_migration_from_v1_keeps_every_attempt_and_backs_up_first(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SQL)
    conn.close()
    with open_history(db) as h:
        assert h.backup is not None and h.backup.exists()
        old = h.attempts()
        h.record(attempt("dropout-basics", 70, 3000))
    assert [(a.id, a.answer, a.percent) for a in old] == [(1, "old answer 一", 40), (2, "old answer 二", 90)]
    assert old[0].missed == ["regularize"]
    # Before v2 every attempt was its own round, so both count as first tries.
    assert {a.round_id for a in old} == {"v1-1", "v1-2"} and all(a.try_no == 1 for a in old)
    backup = sqlite3.connect(h.backup)
    assert backup.execute("PRAGMA user_version").fetchone()[0] == 1
    assert backup.execute("SELECT count(*) FROM attempts").fetchone()[0] == 2
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # A second open has nothing to migrate and takes no new backup.
    with open_history(db) as h2:
        assert h2.backup is None
        assert len(h2.attempts()) == 3


def test_a_failed_migration_rolls_back_and_keeps_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from grader import history as mod

    db = tmp_path / "h.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SQL)
    conn.close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE attempts ADD COLUMN round_id TEXT")
        conn.execute("THIS IS NOT SQL")

    monkeypatch.setattr(mod, "MIGRATIONS", [mod.MIGRATIONS[0], (2, broken)])
    with pytest.raises(HistoryError):
        open_history(db)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert [r[0] for r in conn.execute("PRAGMA table_info(attempts)")].count("round_id") == 0
    assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 2


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode=EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT INTO attempt_points VALUES (999, 'x', 'met', 1, 1)")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@pytest.fixture
def locked_db(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A history with two attempts, held locked by another process until the test ends."""
    db = tmp_path / "h.sqlite3"
    with open_history(db) as h:
        h.record(attempt("q1", 50, 1000))
        h.record(attempt("q2", 80, 2000))
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield db
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.close()
    proc.wait(timeout=10)


def test_a_locked_database_gives_a_clear_error(locked_db: Path) -> None:
    with pytest.raises(HistoryLockedError) as info:
        open_history(locked_db, timeout=0.2)
    assert "locked by another program" in str(info.value) and str(locked_db) in str(info.value)


def test_attempts_made_while_locked_are_kept_and_imported_later(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    h = open_history(db, timeout=0.2)
    h.record(attempt("q1", 50, 1000))
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another writer holds the lock
    with pytest.raises(HistoryLockedError):
        h.record(attempt("q1", 70, 2000))
    with pytest.raises(HistoryLockedError):
        h.record(attempt("q1", 90, 3000))
    assert [a.percent for a in h.pending] == [70, 90]
    assert [a.percent for a in h.attempts()] == [50, 70, 90]  # the session still sees them
    spill = h.close()
    assert spill is not None and spill.exists()
    other.execute("ROLLBACK")
    other.close()
    with open_history(db) as h2:
        assert h2.imported == 2
        assert [a.percent for a in h2.attempts()] == [50, 70, 90]
    assert list(pending_files(db)) == []


def test_a_lock_released_during_the_session_flushes_pending_attempts(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    h = open_history(db, timeout=0.1)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(HistoryLockedError):
        h.record(attempt("q1", 40, 1000))
    other.execute("ROLLBACK")
    h.record(attempt("q1", 60, 2000))
    assert h.pending == []
    assert h.close() is None
    with open_history(db) as h2:
        assert [a.percent for a in h2.attempts()] == [40, 60]


# --------------------------------------------------------------------------- the scheduler


@pytest.mark.parametrize(
    ("level", "recall", "expected"),
    [(0, 85, 1), (0, 84.9, 0), (3, 100, 4), (5, 100, 5), (3, 59.9, 0), (3, 60, 3), (2, 70, 2)],
)
def test_level_rule(level: int, recall: float, expected: int) -> None:
    assert next_level(level, recall) == expected


def test_levels_and_intervals_replayed_from_rounds() -> None:
    t0 = 1_000_000.0
    history = [
        attempt("q", 90, t0),
        attempt("q", 95, t0 + 2 * DAY),
        attempt("q", 100, t0 + 6 * DAY),
    ]
    st = states(["q"], history)["q"]
    assert st.level == 3 and st.interval == INTERVALS[3] and st.due == t0 + 6 * DAY + 7 * DAY
    # A round whose first try came after a hint is not a recall: back to 0.
    st = states(["q"], [*history, attempt("q", 100, t0 + 14 * DAY, hints_used=1)])["q"]
    assert st.level == 0
    # A retry does not count as a first try; missing half the weight shortens the interval by a quarter.
    retry = [attempt("q", 50, t0, round_id="r", missed=("a",)), attempt("q", 100, t0 + 60, round_id="r", try_no=2)]
    st = states(["q"], retry)["q"]
    assert st.level == 0 and st.interval == pytest.approx(INTERVALS[0] * 0.75) and st.best == 100 and st.last == 100


def test_pick_prefers_overdue_then_new_then_soonest() -> None:
    now = 10_000_000.0
    hist = [
        attempt("weak", 30, now - 30 * MINUTE),  # level 0, due after 10 min: overdue ×3
        attempt("good", 100, now - 2 * DAY),  # level 1, due after 1 day: overdue ×2
        attempt("fresh", 100, now - 60),  # level 1, not due
    ]
    ids = ["fresh", "good", "new", "weak"]
    assert pick(ids, hist, now=now) == "weak"
    assert pick(ids, hist, now=now, shown=["weak"]) == "good"
    # Skipped questions wait, even when due.
    assert pick(ids, hist, now=now, shown=["weak", "good"], skipped={"weak", "good"}) == "new"
    assert pick(ids, hist, now=now, shown=["weak", "good", "new"], skipped={"weak", "good", "new"}) == "fresh"
    assert pick(ids, hist, now=now, shown=["weak", "good", "new", "fresh"], skipped=set(ids)) == "weak"
    assert pick(["weak"], hist, now=now, shown=["weak"]) == "weak"  # the only question comes back
    assert pick([], hist, now=now) is None


def test_missed_points_come_back_sooner_than_mastered_ones() -> None:
    """Simulate a learner who always misses q-hard and masters the rest, four questions a day for 30 days."""
    ids = ["q-hard", *(f"q-easy{i}" for i in range(5))]
    now = 0.0
    hist: list[Attempt] = []
    shown: list[str] = []
    for _ in range(120):
        q = pick(ids, hist, now=now, shown=shown[-1:], rng=random.Random(0))
        assert q is not None
        hard = q == "q-hard"
        hist.append(attempt(q, 40 if hard else 100, now, missed=("a",) if hard else ()))
        shown.append(q)
        now += 6 * 3600
    easy = max(shown.count(q) for q in ids[1:])
    assert shown.count("q-hard") > 3 * easy
    st = states(ids, hist)
    assert st["q-hard"].level == 0 and all(st[q].level == 5 for q in ids[1:])


# --------------------------------------------------------------------------- progress and export


def _sample() -> list[Attempt]:
    day = 86_400.0
    t0 = time.time() - 3 * day
    return [
        attempt("q1", 40, t0, round_id="a", missed=("a", "b")),
        attempt("q1", 90, t0 + 60, round_id="a", try_no=2),
        attempt("q2", 50, t0 + day, missed=("b",)),
        attempt("q1", 70, t0 + 2 * day, missed=("b",)),
    ]


def test_weakest_points_weigh_recent_misses_more() -> None:
    weak = weakest_points(_sample())
    assert [(w.rubric_id, w.point_id, w.missed, w.seen) for w in weak] == [("q1", "b", 2, 2), ("q2", "b", 1, 1), ("q1", "a", 1, 2)]
    assert weak[-1].weakness == pytest.approx(1 / 3, abs=1e-3)  # older round weighs half


def test_trend_uses_first_tries_per_day() -> None:
    trend = daily_trend(_sample())
    assert [(mean, n) for _, mean, n in trend] == [(40, 1), (50, 1), (70, 1)]


def test_progress_report_renders_every_part(tmp_path: Path) -> None:
    from rich.console import Console

    con = Console(width=120, record=True)
    con.print(render_progress(_sample(), None, now=time.time(), lang="en"))
    text = con.export_text()
    assert "q1" in text and "90%" in text and "70%" in text
    assert "Weakest key points" in text and "missed 2 of last 2" in text
    assert "Trend" in text and "█" in text


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_export_writes_every_attempt(tmp_path: Path, suffix: str) -> None:
    sample = _sample()
    sample[0].answer = '多行\n回答, with "quotes"'
    out = tmp_path / f"h{suffix}"
    assert export(sample, out) == 4
    if suffix == ".csv":
        rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
        assert rows[0]["answer"] == sample[0].answer and rows[0]["missed"] == "a;b" and rows[1]["try"] == "2"
    else:
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert rows[0]["answer"] == sample[0].answer and rows[0]["missed"] == ["a", "b"] and len(rows[0]["points"]) == 2
    assert len(rows) == 4


def test_progress_command(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    with open_history(db) as h:
        for a in _sample():
            h.record(a)
    runner = CliRunner()
    res = runner.invoke(main, ["progress", "--db", str(db), "--bank", str(BANK), "--lang", "en"])
    assert res.exit_code == 0, res.output
    assert "q1" in res.output and "Weakest" in res.output
    res = runner.invoke(main, ["progress", "--db", str(db), "--export", str(tmp_path / "out.jsonl")])
    assert res.exit_code == 0 and len((tmp_path / "out.jsonl").read_text().splitlines()) == 4
    res = runner.invoke(main, ["progress", "--db", str(db), "--export", str(tmp_path / "out.xlsx")])
    assert res.exit_code == 2 and "name it .csv or .jsonl" in res.output
    bad = tmp_path / "bad.sqlite3"
    bad.write_text("not a database")
    res = runner.invoke(main, ["progress", "--db", str(bad)])
    assert res.exit_code == 2 and "damaged" in res.output and "Traceback" not in res.output
    empty = tmp_path / "empty.sqlite3"
    open_history(empty).close()  # a history with no attempts yet (as `grader practice` leaves after quitting at once)
    res = runner.invoke(main, ["progress", "--db", str(empty), "--lang", "en"])
    assert res.exit_code == 0 and "No practice yet" in res.output


@pytest.mark.parametrize("export", [False, True])
def test_progress_reads_only_and_creates_nothing(tmp_path: Path, export: bool) -> None:
    # Regression: `grader progress --db /nonexistent/dir/h.db` created the folders and an empty database.
    db = tmp_path / "no" / "such" / "dir" / "h.db"
    args = ["progress", "--db", str(db), "--lang", "en"] + (["--export", str(tmp_path / "out.csv")] if export else [])
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: the practice history {db} does not exist"), res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder, no database, no export
    with pytest.raises(HistoryMissingError):
        open_history(tmp_path / "h.db", create=False)
    assert not (tmp_path / "h.db").exists()


def test_practice_still_creates_the_history(tmp_path: Path) -> None:
    db = tmp_path / "new" / "dir" / "h.db"
    res = CliRunner().invoke(main, ["practice", "--bank", str(BANK), "--question", "dropout-basics", "--db", str(db)], input="dropout\n")
    assert res.exit_code == 0, res.output
    assert db.exists()
    res = CliRunner().invoke(main, ["progress", "--db", str(db), "--lang", "en"])
    assert res.exit_code == 0 and "dropout-basics" in res.output
