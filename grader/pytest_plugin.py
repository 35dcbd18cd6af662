"""pytest plugin: each rubric's examples become test items.

`pytest rubrics/` collects every YAML file with a top-level `key_points:` key (a rubric)
under the paths pytest is given; `pytest --rubrics DIR` adds DIR to them. Per rubric file:

- `rubric`: the structural checks and the reference answer (as `grader check` runs them);
  warnings are reported as pytest warnings (they fail with `--rubrics-strict`);
- `examples[N]-kind`: one item per example; a failure shows the expected range, the score,
  and every point with its status, marking the points that differ from `met`/`not_met`.

Bank-wide checks (duplicate ids across files) are `grader check`'s job.
Registered as the `grader` entry point in the `pytest11` group; disable with `-p no:grader`.
"""

from __future__ import annotations

import copy
import inspect
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .check import CaseResult, Finding, LoadedRubric, check_example, check_rubric, load_for_check
from .errors import RubricErrors

_RUBRIC_SNIFF = re.compile(r"^key_points\s*:", re.MULTILINE)


class RubricCheckWarning(UserWarning):
    """A `grader check` warning about a rubric (e.g. a key point no example covers)."""


class RubricCheckFailure(Exception):
    """A rubric check failed; the message is the whole report."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader", "rubric examples (grader)")
    group.addoption(
        "--rubrics",
        action="append",
        default=[],
        metavar="DIR",
        help="Also collect the rubrics in DIR: each example becomes a test item.",
    )
    group.addoption("--rubrics-strict", action="store_true", default=False, help="Rubric warnings fail the rubric's item.")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Undo what `--rubrics DIR` (with a space) did before this plugin was loaded.

    pytest finds its rootdir and config file from the command line's paths *before* it loads
    plugins, so it took DIR for a test path: a DIR outside the project moved the rootdir to
    the common parent and lost the project's config (its `norecursedirs`, `testpaths`, ...).
    Now that `--rubrics` is a known option, redo that step without DIR.
    """
    ns = early_config.known_args_namespace
    if not getattr(ns, "rubrics", None):
        return
    try:
        _redo_setup_without_rubrics(early_config, parser, args)
    except (AttributeError, ImportError, TypeError, ValueError) as exc:  # pytest's internals moved
        if not _setup_is_right(early_config):
            raise pytest.UsageError(
                f"--rubrics: this pytest chose rootdir {early_config.rootpath} from DIR ({exc}); write --rubrics=DIR"
            ) from exc


def _setup_args(config: pytest.Config) -> dict[str, Any]:
    from _pytest.config.findpaths import determine_setup

    ns = config.known_args_namespace
    wanted = {
        "inifile": ns.inifilename,
        "override_ini": ns.override_ini,
        "args": ns.file_or_dir,  # re-parsed with --rubrics known: DIR is no longer among them
        "rootdir_cmd_arg": ns.rootdir or None,
        "invocation_dir": config.invocation_params.dir,
    }
    params = inspect.signature(determine_setup).parameters
    found = determine_setup(**{k: v for k, v in wanted.items() if k in params})
    return {"rootpath": found[0], "inipath": found[1], "inicfg": found[2], "ignored": found[3] if len(found) > 3 else None}


def _setup_is_right(config: pytest.Config) -> bool:
    setup = _setup_args(config)
    return bool(setup["rootpath"] == config.rootpath and setup["inipath"] == config.inipath)


def _redo_setup_without_rubrics(config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    setup = _setup_args(config)
    if setup["rootpath"] == config.rootpath and setup["inipath"] == config.inipath:
        return  # e.g. a folder inside the project: pytest found the same config
    ns = config.known_args_namespace
    old_cutdir = str(config.inipath.parent if config.inipath else config.rootpath)
    config._rootpath = setup["rootpath"]
    config._inipath = setup["inipath"]
    config._inicfg = setup["inicfg"]
    config._inicache.clear()
    if setup["ignored"] is not None and hasattr(config, "_ignored_config_files"):
        config._ignored_config_files = setup["ignored"]
    parser.extra_info["rootdir"] = str(config.rootpath)
    parser.extra_info["inifile"] = str(config.inipath)
    # What pytest does right after finding the config: its addopts, minversion and pythonpath.
    # `args` is the list pytest parses next, so the addopts are prepended in place.
    args[:0] = config.getini("addopts")
    config._checkversion()
    config._configure_python_path()
    config.known_args_namespace = parser.parse_known_args(args, namespace=copy.copy(config.option))
    if ns.confcutdir is not None and ns.confcutdir != old_cutdir:
        config.known_args_namespace.confcutdir = ns.confcutdir  # given by the user
    else:
        config.known_args_namespace.confcutdir = str(config.inipath.parent if config.inipath else config.rootpath)


def pytest_configure(config: pytest.Config) -> None:
    for extra in config.getoption("rubrics"):
        if not Path(extra).exists():
            raise pytest.UsageError(f"--rubrics: no such folder: {extra}")
        if extra not in config.args:
            config.args.append(str(extra))


def _is_rubric(file_path: Path) -> bool:
    if file_path.suffix not in {".yaml", ".yml"} or file_path.name.startswith(("_", ".")):
        return False
    try:
        text = file_path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return False
    return bool(_RUBRIC_SNIFF.search(text))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_rubric(file_path):
        return RubricFile.from_parent(parent, path=file_path)
    return None


class RubricFile(pytest.File):
    """One rubric YAML file."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            loaded = load_for_check(self.path, source=_display(self.path, self.config.rootpath))
        except RubricErrors as exc:
            yield ParseItem.from_parent(self, name="parse", errors=exc)
            return
        yield RubricItem.from_parent(self, name="rubric", loaded=loaded)
        for i, ex in enumerate(loaded.rubric.examples):
            name = f"examples[{i}]" + (f"-{ex.kind}" if ex.kind else "")
            yield ExampleItem.from_parent(self, name=name, loaded=loaded, index=i)


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


class _CheckItem(pytest.Item):
    line: int | None = None

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, RubricCheckFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.line - 1) if self.line else None, self.name


class ParseItem(_CheckItem):
    """A rubric file that does not parse: fails with every error, each with its line."""

    def __init__(self, *, errors: RubricErrors, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.errors = errors
        self.line = errors.errors[0].line if errors.errors else None

    def runtest(self) -> None:
        raise RubricCheckFailure("rubric does not parse:\n" + "\n".join(f"  {e}" for e in self.errors.errors))


class RubricItem(_CheckItem):
    """Structure, languages and the reference answer of one rubric."""

    def __init__(self, *, loaded: LoadedRubric, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        self.line = loaded.line("id")

    def runtest(self) -> None:
        strict = bool(self.config.getoption("rubrics_strict"))
        cases = [c for c in check_rubric(self.loaded) if c.kind != "example"]
        findings = [f for c in cases for f in c.findings]
        failing = [f for f in findings if f.severity == "error" or strict]
        for f in findings:
            if f not in failing:
                # Attributed to the rubric's own line, so the warnings summary points at the YAML.
                warnings.warn_explicit(RubricCheckWarning(f"[{f.code}] {f.message}"), RubricCheckWarning, str(self.path), f.line or 1)
        if failing:
            raise RubricCheckFailure(_failure_text(f"rubric {self.loaded.rubric.id!r}", failing))


class ExampleItem(_CheckItem):
    """One example: graded, then compared with its expected range and assertions."""

    def __init__(self, *, loaded: LoadedRubric, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        self.index = index
        self.line = loaded.line("examples", index)

    def runtest(self) -> None:
        case, _ = check_example(self.loaded, self.index)
        if case.findings:
            raise RubricCheckFailure(_example_text(self.loaded, self.index, case))


def _failure_text(title: str, findings: list[Finding]) -> str:
    lines = [f"{title}: {len(findings)} problem{'s' * (len(findings) != 1)}"]
    for f in findings:
        lines.append(f"  {f.where()}: [{f.code}] {f.message}")
        lines += [f"      {d}" for d in f.detail]
    return "\n".join(lines)


def _example_text(loaded: LoadedRubric, index: int, case: CaseResult) -> str:
    ex = loaded.rubric.examples[index]
    answer = " ".join(ex.answer.split())
    if len(answer) > 240:
        answer = answer[:239] + "…"
    lo, hi = ex.score
    lines = [
        f"{loaded.file}:{case.line}: {loaded.rubric.id} {case.name}",
        f"  answer:   {answer}",
        f"  expected: score in [{lo:g}, {hi:g}]"
        + (f", met {ex.met}" if ex.met else "")
        + (f", not met {ex.not_met}" if ex.not_met else ""),
        f"  got:      score {case.score:g}" if case.score is not None else "  got:      no score",
        "",
    ]
    prefix = f"{case.name}: "
    for f in case.findings:
        msg = f.message[len(prefix) :] if f.message.startswith(prefix) else f.message
        lines.append(f"  [{f.code}] {msg}")
    detail = next((f.detail for f in case.findings if f.detail), [])
    if detail:
        lines += ["", "  points (+ met, ~ partial, - missing, x contradicted):"]
        lines += [f"    {d}" for d in detail]
    return "\n".join(lines)
