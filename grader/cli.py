"""The command line: a thin layer over the library. Errors become one-line messages."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.text import Text

from . import COMPILED, GraderError, grade, load_bank
from .errors import InputError
from .render import console, render_result

if TYPE_CHECKING:
    from .judge import JudgeConfig

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn library errors into click errors (exit 2) and never show a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GraderError as exc:
            raise click.ClickException(str(exc)) from None
        except BrokenPipeError:
            raise  # stdout was closed early (`| head`): not an error, see _QuietPipeGroup
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from None

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature; mypy cannot see it


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


# --- LLM judge options (issue 4), shared by `grade` and `batch`: same names, same env vars ---
_JUDGE_OPTIONS = [
    click.option("--judge", is_flag=True, envvar="GRADER_JUDGE", help="Also ask the LLM judge (see docs/llm-judge.md). Env: GRADER_JUDGE."),
    click.option("--model", envvar="GRADER_MODEL", default=None, help="Judge model name. Env: GRADER_MODEL."),
    click.option(
        "--base-url", envvar="OPENAI_BASE_URL", default=None, help="OpenAI-compatible endpoint (default: OpenAI). Env: OPENAI_BASE_URL."
    ),
    click.option(
        "--judge-policy",
        type=click.Choice(["review", "full"]),
        envvar="GRADER_JUDGE_POLICY",
        default="review",
        show_default=True,
        help="review: judge only points the matcher did not settle; full: judge every point. Env: GRADER_JUDGE_POLICY.",
    ),
    click.option("--samples", type=click.IntRange(1, 15), default=1, show_default=True, help="Judge verdicts to vote on per point."),
    click.option("--no-cache", is_flag=True, help="Ask the judge even when a cached reply exists."),
    click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="GRADER_CACHE_DIR",
        default=None,
        help="Judge cache folder. Env: GRADER_CACHE_DIR.",
    ),
    click.option(
        "--max-cost",
        type=click.FloatRange(0),
        envvar="GRADER_MAX_COST",
        default=None,
        help="Dollars; no judge calls past this. Env: GRADER_MAX_COST.",
    ),
]


def judge_options(func: F) -> F:
    """Add the judge's options (--judge, --model, --base-url, --judge-policy, --samples, --no-cache, --cache-dir, --max-cost)."""
    for option in reversed(_JUDGE_OPTIONS):
        func = option(func)
    return func


def judge_config(
    *,
    model: str | None,
    base_url: str | None,
    judge_policy: str,
    samples: int,
    no_cache: bool,
    cache_dir: Path | None,
    max_cost: float | None,
    concurrency: int | None = None,
) -> JudgeConfig:
    """The JudgeConfig for the judge options (the environment fills what is not given)."""
    from .judge import JudgeConfig

    return JudgeConfig.from_env(
        model=model,
        base_url=base_url,
        policy=judge_policy,
        samples=samples,
        cache=not no_cache,
        cache_dir=cache_dir,
        max_cost=max_cost,
        concurrency=concurrency,
    )


# --- stdout closed early (`grader list | head -1`): stop quietly, like standard Unix tools ---
EXIT_BROKEN_PIPE = 141
"""Exit code when the reader of stdout goes away: 128 + SIGPIPE, what a shell shows for `yes | head -1`."""


def _stdout_closed() -> None:
    # Later writes (and the flush at interpreter exit) go to devnull, so no second error is printed.
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), sys.stdout.fileno())
    sys.exit(EXIT_BROKEN_PIPE)


def _flush_stdout() -> None:
    # Output often sits in the buffer until exit: flush it here, where a closed pipe can still be handled.
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_closed()


class _QuietPipeGroup(click.Group):
    """A group whose commands exit 141 with no message when stdout is closed early.

    Click would print nothing but exit 1 (or, through friendly_errors, print `Broken pipe`
    and exit 2), and a pipe that breaks at the final flush would print `Exception ignored`.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        # `grader --help | head -1`: the group's own --help and --version print while parsing.
        ctx: click.Context = self._guarded(functools.partial(super().make_context, *args, **kwargs))
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        return self._guarded(functools.partial(super().invoke, ctx))

    @staticmethod
    def _guarded(call: Callable[[], Any]) -> Any:
        try:
            rv = call()
        except (SystemExit, click.exceptions.Exit) as exc:
            if isinstance(exc.__context__, BrokenPipeError):
                _stdout_closed()  # rich's Console.on_broken_pipe turns a closed pipe into exit 1
            _flush_stdout()
            raise
        except BrokenPipeError:
            _stdout_closed()
        _flush_stdout()
        return rv


@click.group(cls=_QuietPipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="grader", message=f"%(prog)s %(version)s ({'compiled' if COMPILED else 'pure Python'} matcher)")
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
    if not text.strip(" \t\r\n\x00\x0b\x0c"):
        raise InputError("the answer is empty")
    return text


@main.command("grade")
@click.argument("rubric_id")
@click.argument("answer_file", required=False)
@click.option("--answer", "-a", help="The answer text (instead of ANSWER_FILE).")
@bank_option
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@lang_option
@judge_options
@click.option("--dry-run", is_flag=True, help="Estimate the judge's tokens and cost, make no call.")
@friendly_errors
def grade_cmd(
    rubric_id: str,
    answer_file: str | None,
    answer: str | None,
    bank_dir: Path | None,
    as_json: bool,
    lang: str | None,
    judge: bool = False,
    dry_run: bool = False,
    **judge_opts: Any,
) -> None:
    """Grade one answer against RUBRIC_ID.

    The answer comes from ANSWER_FILE, from stdin ('-'), or from --answer.
    With --judge, the LLM judge rules on what the matcher did not settle; token usage goes to stderr.
    """
    bank = load_bank(bank_dir)
    rubric = bank[rubric_id]
    text = read_answer(answer_file, answer)
    if judge or dry_run:
        from .judge import judge_one

        config = judge_config(**judge_opts)
        judged, usage_line = judge_one(rubric, text, config, lang=lang, dry_run=dry_run)
        click.echo(usage_line, err=True)
        if judged is None:
            return
        result = judged
        reasons = sorted({p.reason for p in result.points if p.status == "unscored" and p.reason})
        if reasons:
            # the matcher's verdicts stand; say why the judge could not rule
            unscored = sum(p.status == "unscored" for p in result.points)
            click.echo(f"judge: could not score {unscored} point(s), the matcher's verdicts stand: {reasons[0]}", err=True)
    else:
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
    if tag and not any(tag in bank[rid].tags for rid in bank):
        known = sorted({t for rid in bank for t in bank[rid].tags})
        raise InputError(f"no question has the tag {tag!r}; tags in this bank: {', '.join(known)}")
    for rid in bank:
        rubric = bank[rid]
        if tag and tag not in rubric.tags:
            continue
        line = Text(f"{rid:<28} ", style="bold")
        line.append(rubric.question.get(lang or "en"), style="")
        if rubric.tags:
            line.append(f"  [{', '.join(rubric.tags)}]", style="dim")
        out.print(line)


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
    """Validate rubrics (PATH: folders or files, `-` for one rubric on stdin; default: --bank or the built-in bank).

    Exits 1 on any error (and, with --strict, on any warning), 2 on bad input.
    """
    from . import builtin_bank_path
    from .check import CODES, run_check, stdin_text
    from .check_output import render

    if list_codes:
        for code, meaning in CODES.items():
            click.echo(f"{code:<34} {meaning}")
        return
    roots = list(paths) or [bank_dir or builtin_bank_path()]
    # `-`: one rubric from stdin, e.g. `grader draft … | grader check -`
    stdin = stdin_text(sys.stdin.buffer.read()) if any(str(p) == "-" for p in roots) else None
    report = run_check(roots, answers=answers, min_score=min_score, stdin=stdin)
    if output is not None:
        output.write_text(render(report, fmt, strict=strict) + "\n", encoding="utf-8")
        click.echo(render(report, "text", strict=strict))
    else:
        click.echo(render(report, fmt, strict=strict))
    if report.failed(strict=strict):
        sys.exit(1)


# --------------------------------------------------------------------------- batch, merge, report (issue 5)


@main.command("batch")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GRADER_OUT",
    help="Output folder (rerun with the same folder to resume). Env: GRADER_OUT.",
)
@bank_option
@lang_option
@click.option(
    "--workers",
    "-j",
    type=click.IntRange(0),
    default=0,
    envvar="GRADER_WORKERS",
    help="Matcher processes (0 = one per CPU). Env: GRADER_WORKERS.",
)
@click.option(
    "--encoding",
    default=None,
    envvar="GRADER_ENCODING",
    help="Input text encoding (default: detect UTF-8, UTF-8 with BOM, GBK/GB18030). Env: GRADER_ENCODING.",
)
@click.option(
    "--columns",
    default=None,
    envvar="GRADER_COLUMNS",
    help="Map column names, e.g. student=学号,question=题号,answer=答案. Env: GRADER_COLUMNS.",
)
@click.option(
    "--max-chars",
    type=int,
    default=5000,
    show_default=True,
    envvar="GRADER_MAX_CHARS",
    help="Longer answers are graded truncated and flagged. Env: GRADER_MAX_CHARS.",
)
@click.option(
    "--shard",
    default=None,
    envvar="GRADER_SHARD",
    help="K/N: grade only the K-th of N shares of the input (by student). Env: GRADER_SHARD.",
)
@click.option("--restart", is_flag=True, help="Discard earlier results in --out instead of resuming.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal, unless CI is set).")
@click.option("--no-report", is_flag=True, help="Skip report.html (build it later with `grader report`).")
@judge_options
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    envvar="GRADER_CONCURRENCY",
    help="With --judge: judge requests in flight at once. Env: GRADER_CONCURRENCY.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check every row and count what a run would do (with --judge: estimate requests, tokens, cost); grade, call and write nothing.",
)
@friendly_errors
def batch_cmd(
    inputs: tuple[Path, ...],
    out: Path,
    bank_dir: Path | None,
    lang: str | None,
    workers: int,
    encoding: str | None,
    columns: str | None,
    max_chars: int,
    shard: str | None,
    restart: bool,
    progress: bool | None,
    no_report: bool,
    judge: bool = False,
    concurrency: int = 8,
    dry_run: bool = False,
    **judge_opts: Any,
) -> None:
    """Grade a cohort: INPUT files (CSV, TSV, JSONL, XLSX) with student, question and answer columns.

    With --judge, the LLM judge rules on what the matcher did not settle; its usage is in the summary.
    Exits 0 when every row was graded, 3 when some rows had errors (see errors.csv) or, with --judge,
    were left unscored by the judge or unjudged by --max-cost, 2 on usage errors.
    """
    from .batch import BatchOptions, format_summary, parse_columns, parse_shard, run_batch

    config = judge_config(**judge_opts, concurrency=concurrency) if judge else None

    opts = BatchOptions(
        inputs=list(inputs),
        out=out,
        bank=bank_dir,
        lang=lang,
        workers=workers,
        encoding=encoding,
        columns=parse_columns(columns),
        max_chars=max_chars,
        shard=parse_shard(shard),
        restart=restart,
        progress=progress,
        report=not no_report,
        judge=config,
    )
    if dry_run:  # nothing is written to --out; the exit code is the one a run would give
        from .batch import dry_run_batch, format_dry_run

        try:
            planned = dry_run_batch(opts)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: nothing was written", err=True)
            sys.exit(130)
        click.echo(format_dry_run(planned), err=True)
        sys.exit(planned.exit_code)
    try:
        summary = run_batch(opts)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: finished rows are saved in {out}; rerun the same command to resume", err=True)
        sys.exit(130)
    click.echo(format_summary(summary), err=True)
    sys.exit(summary.exit_code)


@main.command("merge")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--out", "-o", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the combined outputs."
)
@click.option("--partial", is_flag=True, help="Merge even if some shards are missing.")
@bank_option
@lang_option
@friendly_errors
def merge_cmd(dirs: tuple[Path, ...], out: Path, partial: bool, bank_dir: Path | None, lang: str | None) -> None:
    """Combine the output folders of `grader batch --shard K/N` runs into --out."""
    from .batch import format_summary, merge

    summary = merge(list(dirs), out, allow_partial=partial, lang=lang, bank_path=bank_dir)
    click.echo(format_summary(summary), err=True)
    sys.exit(summary.exit_code)


@main.command("report")
@click.argument("dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@bank_option
@lang_option
@friendly_errors
def report_cmd(dir: Path, bank_dir: Path | None, lang: str | None) -> None:
    """Rebuild DIR/report.html from DIR/results.jsonl."""
    from .report import build_report

    path = build_report(dir, lang=lang, bank=load_bank(bank_dir) if bank_dir else None)
    click.echo(str(path))


# --------------------------------------------------------------------------- practice, progress (issue 6)

db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GRADER_DB",
    default=None,
    help="The practice history (sqlite; default: history.sqlite3 in your data folder). Env: GRADER_DB.",
)


@main.command("practice")
@click.option("--tag", "tags", multiple=True, envvar="GRADER_TAG", help="Only questions with this tag (repeatable). Env: GRADER_TAG.")
@click.option("--question", "-q", default=None, help="Practise this question id only.")
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    envvar="GRADER_LANG",
    default=None,
    help="Language of questions and feedback (default: follow your answers). Env: GRADER_LANG.",
)
@bank_option
@judge_options
@db_option
@friendly_errors
def practice_cmd(
    tags: tuple[str, ...], question: str | None, lang: str | None, bank_dir: Path | None, judge: bool, db: Path | None, **judge_opts: Any
) -> None:
    """Practise interview questions with instant feedback; remembers what you miss.

    On a terminal: an interactive session (commands: hint, answer, skip, quit).
    With stdin not a terminal: grade the one answer read from stdin, print the result and exit.
    """
    from .practice import practise

    interactive = sys.stdin.isatty()
    text = None if interactive else sys.stdin.read()
    practise(
        load_bank(bank_dir),
        console(),
        tags=tags,
        question=question,
        lang=lang,
        db=db,
        judge=judge_config(**judge_opts) if judge else None,
        interactive=interactive,
        answer_text=text,
    )


@main.command("progress")
@db_option
@bank_option
@click.option("--lang", type=click.Choice(["zh", "en"]), envvar="GRADER_LANG", default=None, help="Report language. Env: GRADER_LANG.")
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write every attempt to FILE (.csv or .jsonl).",
)
@friendly_errors
def progress_cmd(db: Path | None, bank_dir: Path | None, lang: str | None, export_path: Path | None) -> None:
    """Your practice history: best and last scores, weakest key points, trend over time."""
    import time

    from .history import open_history
    from .practice import locale_lang
    from .progress import export, render_progress

    with open_history(db, create=False) as history:  # read-only: a missing file is an error, not a new empty history
        attempts = history.attempts()
    if export_path is not None:
        n = export(attempts, export_path)
        click.echo(f"wrote {n} attempts to {export_path}", err=True)
        return
    try:
        bank = load_bank(bank_dir)
    except GraderError:
        bank = None  # the report still works from the history alone, showing point ids
    console().print(render_progress(attempts, bank, now=time.time(), lang=lang or locale_lang()))


# --------------------------------------------------------------------------- eval, suggest, draft (issue 7)

columns_eval_option = click.option(
    "--columns",
    default=None,
    envvar="GRADER_COLUMNS",
    help="Map column names, e.g. question=题号,answer=答案,score=分数,score2=复评. Env: GRADER_COLUMNS.",
)
id_format_option = click.option(
    "--id-format",
    default="{}",
    show_default=True,
    envvar="GRADER_ID_FORMAT",
    help="Rubric id for a dataset question id, e.g. 'asap-{}' maps question 1 to asap-1. Env: GRADER_ID_FORMAT.",
)


@main.command("eval")
@click.argument("datasets", nargs=-1, required=True, type=click.Path(path_type=Path))
@bank_option
@columns_eval_option
@id_format_option
@click.option("--encoding", default=None, envvar="GRADER_ENCODING", help="Text encoding (default: detect). Env: GRADER_ENCODING.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, envvar="GRADER_EVAL_FORMAT")
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a small HTML page with plots."
)
@click.option("--worst", type=click.IntRange(0), default=10, show_default=True, help="How many worst disagreements to show.")
@judge_options
@friendly_errors
def eval_cmd(
    datasets: tuple[Path, ...],
    bank_dir: Path | None,
    columns: str | None,
    id_format: str,
    encoding: str | None,
    fmt: str,
    html_path: Path | None,
    worst: int,
    judge: bool,
    **judge_opts: Any,
) -> None:
    """Agreement with human graders on DATASET (CSV/TSV/JSONL: question, answer, score[, score2]).

    Pearson, Spearman, QWK, RMSE, MAE and confusion matrices per question and overall, the
    human-human ceiling when a second score exists, and the worst disagreements explained.
    """
    from .evaluate import format_json, format_text, parse_columns, run_eval

    bank = load_bank(bank_dir)
    report = run_eval(
        list(datasets),
        bank,
        columns=parse_columns(columns),
        encoding=encoding,
        id_format=id_format,
        judge=judge_config(**judge_opts) if judge else None,
        worst=worst,
        bank_name=str(bank.path),
        html_path=html_path,
    )
    click.echo(format_json(report) if fmt == "json" else format_text(report))


@main.command("suggest")
@click.argument("rubric_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--graded",
    "graded",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Human-scored answers (CSV/TSV/JSONL); repeatable.",
)
@columns_eval_option
@id_format_option
@click.option("--question", default=None, help="Use the rows with this question id (default: rows whose id maps to the rubric's id).")
@click.option("--folds", type=click.IntRange(2, 10), default=3, show_default=True, help="1 of FOLDS is held out to measure proposals.")
@click.option("--seed", type=int, default=0, show_default=True, help="Changes which rows are held out.")
@click.option("--min-support", type=click.IntRange(1), default=5, show_default=True, help="Fewest mined answers a phrase must come from.")
@click.option(
    "--min-gain", type=click.FloatRange(0), default=0.002, show_default=True, help="Smallest QWK gain on the mining fold worth proposing."
)
@click.option("--candidates", type=click.IntRange(1), default=40, show_default=True, help="How many mined phrases to try.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--apply", "apply", is_flag=True, help="Write the accepted proposals into RUBRIC_FILE (comments and order kept).")
@friendly_errors
def suggest_cmd(
    rubric_file: Path,
    graded: tuple[Path, ...],
    columns: str | None,
    id_format: str,
    question: str | None,
    folds: int,
    seed: int,
    min_support: int,
    candidates: int,
    min_gain: float,
    fmt: str,
    apply: bool,
) -> None:
    """Propose new alternatives and exclusions for RUBRIC_FILE from human-scored answers.

    Each proposal shows its effect on QWK on a held-out fold. Nothing is written without --apply.
    """
    from .evaluate import parse_columns
    from .suggest import format_report, run_suggest

    report, written = run_suggest(
        rubric_file,
        list(graded),
        columns=parse_columns(columns),
        question=question,
        id_format=id_format,
        folds=folds,
        seed=seed,
        min_support=min_support,
        candidates=candidates,
        min_gain=min_gain,
        apply=apply,
    )
    click.echo(report.model_dump_json(indent=2) if fmt == "json" else format_report(report, applied=written if apply else None))


@main.command("draft")
@click.option("--question", "-q", required=True, help="The question text.")
@click.option("--reference", "-r", required=True, help="The reference answer: text, a file name, or '-' for stdin.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None, help="The language of question and reference (default: detect).")
@click.option(
    "--id",
    "rubric_id",
    default=None,
    help="The rubric id (default: the --output file's name without .yaml, else the question's English words, else draft-<hash>).",
)
@click.option("--max-score", type=click.FloatRange(min=0, min_open=True), default=100.0, show_default=True)
@click.option("--max-points", type=click.IntRange(1, 20), default=8, show_default=True, help="At most this many key points.")
@click.option("--judge", is_flag=True, envvar="GRADER_JUDGE", help="Let the LLM judge propose points, alternatives and misconceptions.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the YAML here (default: stdout)."
)
@friendly_errors
def draft_cmd(
    question: str,
    reference: str,
    lang: str | None,
    rubric_id: str | None,
    max_score: float,
    max_points: int,
    judge: bool,
    output: Path | None,
) -> None:
    """Draft a rubric YAML from a reference answer, with # REVIEW: comments for a person to check."""
    from .draft import draft_rubric, id_for_file, judge_draft, read_reference

    ref = read_reference(reference)
    if judge:
        text = judge_draft(question, ref, lang=lang)
    else:
        rid = rubric_id or id_for_file(output)
        text = draft_rubric(question, ref, lang=lang, rubric_id=rid, max_score=max_score, max_points=max_points)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
