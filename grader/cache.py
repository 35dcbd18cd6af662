"""The judge's reply cache: sqlite, keyed by everything that can change a reply.

The key hashes the endpoint, model, prompt hash, rubric version, normalised answer and sampling
parameters (see `cache_key`). Only validated replies are stored, with their token usage. Never
the API key: it is not part of any key or value.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

CACHE_ENV = "GRADER_CACHE_DIR"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    reply TEXT NOT NULL,
    usage TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def default_cache_dir() -> Path:
    """$GRADER_CACHE_DIR, else the user cache folder (platformdirs)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    from platformdirs import user_cache_path

    return user_cache_path("grader", appauthor=False)


def cache_key(**parts: Any) -> str:
    """A stable hash of the keyword parts (JSON with sorted keys)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ReplyCache:
    """Validated judge replies by key, in `<dir>/judge.sqlite3`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "judge.sqlite3"
        # One connection, used from the event loop thread only; WAL lets several grader
        # processes (batch shards) share a cache.
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get(self, key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(reply, usage) for `key`, or None."""
        row = self._db.execute("SELECT reply, usage FROM replies WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return json.loads(row[0]), json.loads(row[1])

    def put(self, key: str, reply: dict[str, Any], usage: dict[str, Any]) -> None:
        """Store a validated reply and the usage it cost."""
        self._db.execute(
            "INSERT OR REPLACE INTO replies (key, reply, usage, created) VALUES (?, ?, ?, ?)",
            (key, json.dumps(reply, ensure_ascii=False), json.dumps(usage), time.time()),
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self._db.close()
