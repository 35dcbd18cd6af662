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
