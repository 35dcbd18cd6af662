"""The practice history: every attempt, kept in a local sqlite database.

The database lives in the user's data folder (platformdirs), or at ``--db`` / ``$GRADER_DB``.
It is written in WAL mode, its layout is versioned with ``PRAGMA user_version`` and upgraded by
the migrations registered below (after a backup copy is taken), and it is never truncated or
replaced: a damaged file gives a clear error and is left exactly as it was. When the database is
locked by another process, attempts wait in memory and, if still unsaved at the end, in a
``<db>.pending-*.jsonl`` file that the next successful open imports.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .errors import GraderError
from .result import GradeResult

DB_ENV = "GRADER_DB"
DB_NAME = "history.sqlite3"


class HistoryError(GraderError):
    """The history database cannot be used (damaged, locked, or from a newer grader)."""

    def __init__(self, message: str, *, path: Path) -> None:
        self.path = path
        super().__init__(message)


class HistoryLockedError(HistoryError):
    """Another process holds the database lock; retry later."""


class HistoryMissingError(HistoryError):
    """A command that only reads the history found no database file (nothing was created)."""


def default_db_path() -> Path:
    """$GRADER_DB, else ``history.sqlite3`` in the user's data folder."""
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV]).expanduser()
    from platformdirs import user_data_path

    return user_data_path("grader", appauthor=False) / DB_NAME


# --------------------------------------------------------------------------- records


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointRecord(_Model):
    """The verdict on one key point in a stored attempt."""

    id: str
    """The key point's id."""
    status: str
    """met, partial, missing, contradicted or unscored."""
    credit: float
    """Share of the weight earned, in [0, 1]."""
    weight: float
    """The point's weight in the rubric at the time."""


class Attempt(_Model):
    """One graded answer, as stored."""

    id: int | None = None
    """Row id (None until saved)."""
    ts: float
    """When it was graded (Unix time, seconds)."""
    rubric_id: str
    """The question."""
    rubric_version: str
    """Hash of the rubric; scores across versions are comparable only roughly."""
    answer: str
    """The learner's answer as typed."""
    score: float
    """The score, in [0, max_score]."""
    max_score: float
    """The rubric's max_score."""
    percent: float
    """score / max_score × 100."""
    language: str = "unknown"
    """The answer's detected language."""
    engine: str = "matcher"
    """matcher, judge or hybrid."""
    round_id: str = ""
    """One showing of a question; retries of that showing share it."""
    try_no: int = 1
    """1 for the first try in a round, 2 for the first retry, …"""
    hints_used: int = 0
    """Hints or point statements revealed in the round before this try."""
    saw_answer: bool = False
    """The reference answer was shown in the round before this try."""
    points: list[PointRecord] = []
    """Per-point verdicts."""
    misconceptions: list[str] = []
    """Ids of misconceptions flagged."""

    @classmethod
    def from_result(
        cls,
        result: GradeResult,
        answer: str,
        *,
        round_id: str = "",
        try_no: int = 1,
        hints_used: int = 0,
        saw_answer: bool = False,
        ts: float | None = None,
    ) -> Attempt:
        """An attempt record for a graded answer."""
        return cls(
            ts=time.time() if ts is None else ts,
            rubric_id=result.rubric_id,
            rubric_version=result.rubric_version,
            answer=answer,
            score=result.score,
            max_score=result.max_score,
            percent=result.percent,
            language=result.language,
            engine=result.engine,
            round_id=round_id,
            try_no=try_no,
            hints_used=hints_used,
            saw_answer=saw_answer,
            points=[PointRecord(id=p.id, status=p.status, credit=p.credit, weight=p.weight) for p in result.points],
            misconceptions=[m.id for m in result.misconceptions],
        )

    @property
    def met(self) -> list[str]:
        """Ids of points fully met."""
        return [p.id for p in self.points if p.status == "met"]

    @property
    def missed(self) -> list[str]:
        """Ids of points not fully met."""
        return [p.id for p in self.points if p.status != "met"]


# --------------------------------------------------------------------------- migrations

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[int, Migration]] = []


def migration(version: int) -> Callable[[Migration], Migration]:
    """Register the step that upgrades the layout from ``version - 1`` to ``version``."""

    def register(func: Migration) -> Migration:
        assert not MIGRATIONS or MIGRATIONS[-1][0] == version - 1, "migrations must be registered in order"
        MIGRATIONS.append((version, func))
        return func

    return register


@migration(1)
def _m001_attempts(db: sqlite3.Connection) -> None:
    # The first layout: attempts and their per-point verdicts.
    db.execute(
        """CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            rubric_id TEXT NOT NULL,
            rubric_version TEXT NOT NULL,
            answer TEXT NOT NULL,
            score REAL NOT NULL,
            max_score REAL NOT NULL,
            percent REAL NOT NULL,
            language TEXT NOT NULL DEFAULT 'unknown',
            engine TEXT NOT NULL DEFAULT 'matcher'
        )"""
    )
    db.execute(
        """CREATE TABLE attempt_points (
            attempt_id INTEGER NOT NULL REFERENCES attempts(id),
            point_id TEXT NOT NULL,
            status TEXT NOT NULL,
            credit REAL NOT NULL,
            weight REAL NOT NULL,
            PRIMARY KEY (attempt_id, point_id)
        )"""
    )
    db.execute("CREATE INDEX attempts_by_question ON attempts(rubric_id, ts)")


@migration(2)
def _m002_rounds(db: sqlite3.Connection) -> None:
    # Rounds, retries and help taken, so the scheduler can tell a first try from a retry
    # made after reading the hints; and the misconceptions each attempt showed.
    db.execute("ALTER TABLE attempts ADD COLUMN round_id TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE attempts ADD COLUMN try_no INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE attempts ADD COLUMN hints_used INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE attempts ADD COLUMN saw_answer INTEGER NOT NULL DEFAULT 0")
    # Before v2 every attempt was its own round.
    db.execute("UPDATE attempts SET round_id = 'v1-' || id WHERE round_id = ''")
    db.execute(
        """CREATE TABLE attempt_misconceptions (
            attempt_id INTEGER NOT NULL REFERENCES attempts(id),
            misconception_id TEXT NOT NULL,
            PRIMARY KEY (attempt_id, misconception_id)
        )"""
    )


SCHEMA_VERSION = MIGRATIONS[-1][0]


# --------------------------------------------------------------------------- the database


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _damaged(path: Path, detail: str) -> HistoryError:
    return HistoryError(
        f"the practice history {path} is damaged ({detail}). It was left unchanged. "
        f"Move it aside, or pass --db NEW.sqlite3 to start a new history; "
        f"`sqlite3 {path} .recover` may rescue the attempts in it.",
        path=path,
    )


def _missing(path: Path) -> HistoryMissingError:
    return HistoryMissingError(
        f"the practice history {path} does not exist (nothing was created); "
        "run `grader practice` to start one, or pass --db with the file you practised with",
        path=path,
    )


def _locked(path: Path) -> HistoryLockedError:
    return HistoryLockedError(
        f"the practice history {path} is locked by another program (another `grader practice`?). "
        "Nothing was lost; close the other program and try again, or pass --db to use another file.",
        path=path,
    )


class History:
    """An open history database. Use `open_history()`; close it (or use `with`)."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._db = conn
        self.pending: list[Attempt] = []
        """Attempts not yet written because the database was locked."""
        self.backup: Path | None = None
        """The copy taken before the last migration, if any."""
        self.imported = 0
        """Attempts recovered from pending files when opening."""

    # -- writing

    def record(self, attempt: Attempt) -> Attempt:
        """Store one attempt (and any still pending). Returns it with its id.

        Raises:
            HistoryLockedError: the database is locked; the attempt is kept in `pending`.
            HistoryError: the database is damaged; the attempt is kept in `pending`.
        """
        self.pending.append(attempt)
        self.flush()
        return attempt

    def flush(self) -> None:
        """Write pending attempts in one transaction (see `record` for errors)."""
        if not self.pending:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for a in self.pending:
                    a.id = self._insert(a)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                for a in self.pending:
                    a.id = None
                raise
        except sqlite3.Error as exc:
            raise _locked(self.path) if _is_locked(exc) else _damaged(self.path, str(exc)) from None
        self.pending.clear()

    def _insert(self, a: Attempt) -> int:
        cur = self._db.execute(
            """INSERT INTO attempts (ts, rubric_id, rubric_version, answer, score, max_score, percent,
                   language, engine, round_id, try_no, hints_used, saw_answer)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                a.ts,
                a.rubric_id,
                a.rubric_version,
                a.answer,
                a.score,
                a.max_score,
                a.percent,
                a.language,
                a.engine,
                a.round_id,
                a.try_no,
                a.hints_used,
                int(a.saw_answer),
            ),
        )
        rowid = cur.lastrowid
        assert rowid is not None
        self._db.executemany(
            "INSERT INTO attempt_points (attempt_id, point_id, status, credit, weight) VALUES (?, ?, ?, ?, ?)",
            [(rowid, p.id, p.status, p.credit, p.weight) for p in a.points],
        )
        self._db.executemany(
            "INSERT OR IGNORE INTO attempt_misconceptions (attempt_id, misconception_id) VALUES (?, ?)",
            [(rowid, m) for m in a.misconceptions],
        )
        return rowid

    # -- reading

    def attempts(self, rubric_id: str | None = None) -> list[Attempt]:
        """Stored attempts, oldest first (optionally for one question), plus pending ones.

        Raises:
            HistoryError: the database cannot be read.
        """
        where, args = ("WHERE rubric_id = ?", (rubric_id,)) if rubric_id else ("", ())
        try:
            rows = self._db.execute(
                f"""SELECT id, ts, rubric_id, rubric_version, answer, score, max_score, percent, language, engine,
                           round_id, try_no, hints_used, saw_answer
                    FROM attempts {where} ORDER BY ts, id""",
                args,
            ).fetchall()
            points: dict[int, list[PointRecord]] = {}
            for aid, pid, status, credit, weight in self._db.execute(
                "SELECT attempt_id, point_id, status, credit, weight FROM attempt_points ORDER BY attempt_id, rowid"
            ):
                points.setdefault(aid, []).append(PointRecord(id=pid, status=status, credit=credit, weight=weight))
            mcs: dict[int, list[str]] = {}
            for aid, mid in self._db.execute("SELECT attempt_id, misconception_id FROM attempt_misconceptions ORDER BY rowid"):
                mcs.setdefault(aid, []).append(mid)
        except sqlite3.Error as exc:
            raise _locked(self.path) if _is_locked(exc) else _damaged(self.path, str(exc)) from None
        out = [
            Attempt(
                id=r[0],
                ts=r[1],
                rubric_id=r[2],
                rubric_version=r[3],
                answer=r[4],
                score=r[5],
                max_score=r[6],
                percent=r[7],
                language=r[8],
                engine=r[9],
                round_id=r[10],
                try_no=r[11],
                hints_used=r[12],
                saw_answer=bool(r[13]),
                points=points.get(r[0], []),
                misconceptions=mcs.get(r[0], []),
            )
            for r in rows
        ]
        out += [a for a in self.pending if rubric_id is None or a.rubric_id == rubric_id]
        return out

    # -- closing

    def close(self) -> Path | None:
        """Write what is pending and close. Returns the spill file if attempts could not be written."""
        spill: Path | None = None
        try:
            self.flush()
        except HistoryError:
            spill = self._spill()
        finally:
            self._db.close()
        return spill

    def _spill(self) -> Path:
        # The database is locked or damaged: keep the attempts beside it for the next open.
        stamp = time.strftime("%Y%m%d-%H%M%S")
        spill = self.path.with_name(f"{self.path.name}.pending-{stamp}-{os.getpid()}.jsonl")
        with spill.open("a", encoding="utf-8") as f:
            for a in self.pending:
                f.write(a.model_dump_json() + "\n")
        self.pending.clear()
        return spill

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_history(path: str | os.PathLike[str] | None = None, *, timeout: float = 5.0, create: bool = True) -> History:
    """Open (creating or upgrading) the history at `path` (default: `default_db_path()`).

    A database with an older layout is first copied to ``<name>.v<N>-backup-<time>`` and then
    migrated in one transaction per step. Pending files left by a locked session are imported.
    With ``create=False`` (for commands that only read, such as `grader progress`) a missing
    file is an error and neither it nor its folder is created.

    Raises:
        HistoryMissingError: ``create=False`` and there is no file at the path.
        HistoryLockedError: another process holds the lock for longer than `timeout` seconds.
        HistoryError: the file is not a sqlite database, is damaged, or is newer than this grader.
    """
    db_path = Path(path).expanduser() if path is not None else default_db_path()
    if db_path.is_dir():
        raise HistoryError(f"the practice history {db_path} is a folder; --db needs a file name", path=db_path)
    if not create and not db_path.exists():
        raise _missing(db_path)
    if create:
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"cannot create the folder for the practice history {db_path}: {exc.strerror}", path=db_path) from None
    try:
        if create:
            conn = sqlite3.connect(db_path, timeout=timeout, isolation_level=None)
        else:
            # mode=rw: sqlite opens the file but never creates it (should it vanish after the check above)
            conn = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=rw", timeout=timeout, isolation_level=None, uri=True)
    except sqlite3.Error as exc:
        raise HistoryError(f"cannot open the practice history {db_path}: {exc}", path=db_path) from None
    history = History(db_path, conn)
    try:
        _prepare(history)
    except sqlite3.Error as exc:
        conn.close()
        raise _locked(db_path) if _is_locked(exc) else _damaged(db_path, str(exc)) from None
    except BaseException:
        conn.close()
        raise
    return history


def _prepare(history: History) -> None:
    db, path = history._db, history.path
    # Reading the header first: on a file that is not a database this fails before any write.
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    check = db.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        raise _damaged(path, f"integrity check: {check}")
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"the practice history {path} was written by a newer grader (layout v{version}, this one knows v{SCHEMA_VERSION}); upgrade grader",
            path=path,
        )
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    if version < SCHEMA_VERSION:
        if version > 0:
            history.backup = _backup(db, path, version)
        for step, func in MIGRATIONS:
            if step <= version:
                continue
            db.execute("BEGIN IMMEDIATE")
            try:
                func(db)
                db.execute(f"PRAGMA user_version = {step}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
    _import_pending(history)


def _backup(db: sqlite3.Connection, path: Path, version: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.v{version}-backup-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.v{version}-backup-{stamp}-{n}")
    with contextlib.closing(sqlite3.connect(target)) as dest:
        db.backup(dest)
    return target


def pending_files(path: Path) -> Iterator[Path]:
    """Spill files left beside the database by sessions that could not write to it."""
    return iter(sorted(path.parent.glob(f"{path.name}.pending-*.jsonl")))


def _import_pending(history: History) -> None:
    for spill in pending_files(history.path):
        try:
            lines = spill.read_text(encoding="utf-8").splitlines()
            attempts = [Attempt.model_validate_json(line) for line in lines if line.strip()]
        except (OSError, ValueError):
            continue  # unreadable: leave it for a human rather than lose it
        for a in attempts:
            a.id = None
        history.pending.extend(attempts)
        history.flush()
        history.imported += len(attempts)
        spill.unlink()
