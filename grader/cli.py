"""The command line: a thin layer over the library. Errors become one-line messages."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from . import GraderError, grade, load_bank
from .errors import InputError
from .render import console, render_result

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn library errors into click errors (exit 2) and never show a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GraderError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from None

    return wrapper  # type: ignore[return-value]


click.ClickException.exit_code = 2  # usage and input errors exit 2, as documented

bank_option = click.option(
    "--bank",
    "bank_dir",
    type=click.Path(path_type=Path),
    envvar="GRADER_BANK",
    default=None,
    help="Folder of rubric YAML files (default: the built-in bank). Env: GRADER_BANK.",
)
lang_option = click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    envvar="GRADER_LANG",
    default=None,
    help="Feedback language (default: the answer's language). Env: GRADER_LANG.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="grader")
def main() -> None:
    """Score free-text answers against rubrics of key points (zh, en or mixed)."""


def read_answer(answer_file: str | None, answer: str | None) -> str:
    """The answer from --answer, a file, or stdin ('-')."""
    if answer is not None and answer_file is not None:
        raise InputError("give the answer either as ANSWER_FILE or with --answer, not both")
    if answer is not None:
        text = answer
    elif answer_file == "-" or (answer_file is None and not sys.stdin.isatty()):
        text = sys.stdin.read()
    elif answer_file is not None:
        path = Path(answer_file)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError(f"answer file not found: {answer_file}") from None
        except UnicodeDecodeError:
            raise InputError(f"{answer_file} is not UTF-8 text") from None
    else:
        raise InputError("no answer: pass ANSWER_FILE, '-' for stdin, or --answer TEXT")
    if not text.strip():
        raise InputError("the answer is empty")
    return text


@main.command("grade")
@click.argument("rubric_id")
@click.argument("answer_file", required=False)
@click.option("--answer", "-a", help="The answer text (instead of ANSWER_FILE).")
@bank_option
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@lang_option
@friendly_errors
def grade_cmd(rubric_id: str, answer_file: str | None, answer: str | None, bank_dir: Path | None, as_json: bool, lang: str | None) -> None:
    """Grade one answer against RUBRIC_ID.

    The answer comes from ANSWER_FILE, from stdin ('-'), or from --answer.
    """
    bank = load_bank(bank_dir)
    rubric = bank[rubric_id]
    text = read_answer(answer_file, answer)
    result = grade(rubric, text, lang=lang)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        console().print(render_result(result, rubric, text))


@main.command("list")
@bank_option
@lang_option
@click.option("--tag", help="Only questions with this tag.")
@friendly_errors
def list_cmd(bank_dir: Path | None, lang: str | None, tag: str | None) -> None:
    """List the bank's questions."""
    bank = load_bank(bank_dir)
    out = console()
    for rid in bank:
        rubric = bank[rid]
        if tag and tag not in rubric.tags:
            continue
        q = rubric.question.get(lang or "en")
        tags = f"  [{', '.join(rubric.tags)}]" if rubric.tags else ""
        out.print(f"[bold]{rid:<28}[/bold] {q}[dim]{tags}[/dim]")


# --------------------------------------------------------------------------- check (issue 3)


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@bank_option
@click.option(
    "--answers",
    type=click.Path(path_type=Path),
    default=None,
    help="Grade this answer sheet (YAML/JSON `id: answer`, or JSONL) against the rubrics instead of checking them.",
)
@click.option(
    "--min-score",
    type=click.FloatRange(0, 100),
    default=90.0,
    show_default=True,
    envvar="GRADER_MIN_SCORE",
    help="With --answers: the lowest passing percent. Env: GRADER_MIN_SCORE.",
)
@click.option("--strict", is_flag=True, envvar="GRADER_STRICT", help="Warnings fail the check too. Env: GRADER_STRICT.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "junit", "github"]),
    default="text",
    show_default=True,
    envvar="GRADER_CHECK_FORMAT",
    help="text, json, junit (XML) or github (workflow annotations). Env: GRADER_CHECK_FORMAT.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report in --format to this file, and a text report to the terminal.",
)
@click.option("--list-codes", is_flag=True, help="List every finding code and exit.")
@friendly_errors
def check_cmd(
    paths: tuple[Path, ...],
    bank_dir: Path | None,
    answers: Path | None,
    min_score: float,
    strict: bool,
    fmt: str,
    output: Path | None,
    list_codes: bool,
) -> None:
    """Validate rubrics (PATH: folders or files; default: --bank or the built-in bank).

    Exits 1 on any error (and, with --strict, on any warning), 2 on bad input.
    """
    from . import builtin_bank_path
    from .check import CODES, run_check
    from .check_output import render

    if list_codes:
        for code, meaning in CODES.items():
            click.echo(f"{code:<34} {meaning}")
        return
    roots = list(paths) or [bank_dir or builtin_bank_path()]
    report = run_check(roots, answers=answers, min_score=min_score)
    if output is not None:
        output.write_text(render(report, fmt, strict=strict) + "\n", encoding="utf-8")
        click.echo(render(report, "text", strict=strict))
    else:
        click.echo(render(report, fmt, strict=strict))
    if report.failed(strict=strict):
        sys.exit(1)
