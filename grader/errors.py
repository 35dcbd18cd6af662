"""Library exceptions. The CLI turns these into one-line messages and exit codes."""

from __future__ import annotations


class GraderError(Exception):
    """Base class for every error `grader` raises on purpose."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class RubricError(GraderError):
    """A rubric file is malformed. Carries the file, line and field path."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, field: str | None = None) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.detail = message
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        what = f"{field}: " if field else ""
        super().__init__(f"{where}{what}{message}")


class RubricErrors(GraderError):
    """Several rubric errors found in one pass (all of them are reported)."""

    def __init__(self, errors: list[RubricError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class UnknownRubricError(GraderError):
    """A rubric id that is not in the bank; carries the closest ids."""

    def __init__(self, rubric_id: str, suggestions: list[str]) -> None:
        self.rubric_id = rubric_id
        self.suggestions = suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown rubric id {rubric_id!r}.{hint} (`grader list` shows all ids)")


class InputError(GraderError):
    """Bad user input: an unreadable answer file, an empty answer, a bad option value."""
