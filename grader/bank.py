"""A bank: a folder of rubric files, loaded lazily by id."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from rapidfuzz import process

from .errors import GraderError, RubricError, RubricErrors, UnknownRubricError
from .rubric import Rubric, load_rubric

BANK_ENV = "GRADER_BANK"


def builtin_bank_path() -> Path:
    """The bank shipped with grader: inside the installed package, or the checkout's rubrics/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "rubrics", here.parent / "rubrics"):
        if candidate.is_dir():
            return candidate
    raise GraderError("the built-in bank is missing from this installation (reinstall grader)")


def rubric_files(path: Path) -> list[Path]:
    """Rubric files under `path` (a folder, searched recursively, or a single file)."""
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.suffix in {".yaml", ".yml"}
        and not p.name.startswith(("_", "."))
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


class Bank(Mapping[str, Rubric]):
    """Rubrics by id. Files are parsed on first use; `bank["dropout"]` loads dropout.yaml."""

    def __init__(self, path: Path, files: list[Path]) -> None:
        self.path = path
        self._files = files
        self._by_stem = {f.stem: f for f in files}
        self._loaded: dict[str, Rubric] = {}
        self._all = False

    def _load_all(self) -> None:
        if self._all:
            return
        errors: list[RubricError] = []
        by_id: dict[str, Rubric] = {}
        for f in self._files:
            try:
                rubric = load_rubric(f)
            except RubricErrors as exc:
                errors.extend(exc.errors)
                continue
            if rubric.id in by_id:
                errors.append(
                    RubricError(f"duplicate rubric id {rubric.id!r} (also in {by_id[rubric.id].source})", file=str(f), line=1, field="id")
                )
                continue
            by_id[rubric.id] = rubric
        if errors:
            raise RubricErrors(errors)
        self._loaded = by_id
        self._all = True

    def __getitem__(self, rubric_id: str) -> Rubric:
        if rubric_id in self._loaded:
            return self._loaded[rubric_id]
        f = self._by_stem.get(rubric_id)
        if f is not None and not self._all:
            rubric = load_rubric(f)
            if rubric.id == rubric_id:
                self._loaded[rubric_id] = rubric
                return rubric
        self._load_all()
        if rubric_id in self._loaded:
            return self._loaded[rubric_id]
        close = process.extract(rubric_id, list(self._loaded), limit=3, score_cutoff=50)
        raise UnknownRubricError(rubric_id, [c for c, _, _ in close])

    def __iter__(self) -> Iterator[str]:
        self._load_all()
        return iter(sorted(self._loaded))

    def __len__(self) -> int:
        self._load_all()
        return len(self._loaded)

    def __contains__(self, rubric_id: object) -> bool:
        if not isinstance(rubric_id, str):
            return False
        try:
            self[rubric_id]
        except UnknownRubricError:
            return False
        return True


def load_bank(path: str | os.PathLike[str] | None = None) -> Bank:
    """The bank at `path`, else at $GRADER_BANK, else the built-in bank.

    Rubrics are parsed lazily; iterating the bank parses all of them.

    Raises:
        GraderError: the path does not exist or holds no rubric files.
        RubricErrors: (on access) a rubric file is invalid.
    """
    chosen = Path(path) if path is not None else Path(os.environ[BANK_ENV]) if os.environ.get(BANK_ENV) else builtin_bank_path()
    if not chosen.exists():
        raise GraderError(f"bank not found: {chosen}")
    files = rubric_files(chosen)
    if not files:
        raise GraderError(f"no rubric files (*.yaml) in {chosen}")
    return Bank(chosen, files)
