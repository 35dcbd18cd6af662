"""Output formats for a `CheckReport`: text, json, junit (XML) and github (workflow annotations)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from .check import CaseResult, CheckReport, Finding

FORMATS = ("text", "json", "junit", "github")


def summary(report: CheckReport, *, strict: bool = False) -> str:
    """`checked 3 rubrics, 25 examples: 2 errors, 1 warning — FAILED`."""
    what = [f"{report.rubrics} rubric{'s' * (report.rubrics != 1)}"]
    if report.answers:
        what.append(f"{report.answers} answer{'s' * (report.answers != 1)}")
    else:
        what.append(f"{report.examples} example{'s' * (report.examples != 1)}")
    e, w = len(report.errors), len(report.warnings)
    verdict = "FAILED" if report.failed(strict=strict) else "ok"
    strict_note = " (strict: warnings fail)" if strict and w else ""
    return f"checked {', '.join(what)}: {e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}{strict_note} — {verdict}"


def _display_path(file: str | None) -> str | None:
    # Paths relative to the working directory, so annotations land on the PR's files.
    if not file:
        return file
    p = Path(file)
    if p.is_absolute():
        try:
            return p.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return file
    return p.as_posix()


def _finding_line(f: Finding, prefix: str) -> str:
    where = _display_path(f.file) or ""
    if where and f.line:
        where += f":{f.line}"
    head = f"{where}: " if where else ""
    return f"{prefix}{head}{f.severity} [{f.code}] {_scoped(f)}"


def _scoped(f: Finding) -> str:
    # Messages about an answer already start with the question id; others get the rubric id.
    return f"{f.rubric_id}: {f.message}" if f.rubric_id and not f.message.startswith(f.rubric_id) else f.message


def format_text(report: CheckReport, *, strict: bool = False) -> str:
    """Human-readable: answer scores (for sheets), then each finding with its detail, then a summary line."""
    lines: list[str] = []
    answers = [c for c in report.cases if c.kind == "answer" and c.score is not None]
    if answers:
        width = max(len(c.name) for c in answers)
        for c in answers:
            mark = "FAIL" if c.failed(strict=strict) else "ok"
            lines.append(f"{c.name:<{width}}  {c.score:g}/{c.max_score:g}  {mark}")
        lines.append("")
    for f in report.findings:
        lines.append(_finding_line(f, ""))
        lines += [f"    {d}" for d in f.detail]
    if report.findings:
        lines.append("")
    lines.append(summary(report, strict=strict))
    return "\n".join(lines)


def format_json(report: CheckReport, *, strict: bool = False) -> str:
    """The whole report as JSON, with `ok` and counts on top."""
    data = {
        "ok": not report.failed(strict=strict),
        "strict": strict,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        **report.model_dump(mode="json"),
    }
    return json.dumps(data, ensure_ascii=False, indent=2)


# XML 1.0 cannot hold most control characters, and answer text may contain them.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    return _XML_BAD.sub("\ufffd", text)


def _finding_text(f: Finding) -> str:
    return "\n".join([f"{f.where()}: [{f.code}] {f.message}" if f.where() else f"[{f.code}] {f.message}", *f.detail])


def format_junit(report: CheckReport, *, strict: bool = False) -> str:
    """JUnit XML: a testsuite per rubric (or sheet), a testcase per case; errors (and strict warnings) are failures."""
    root = ET.Element("testsuites", name="grader check")
    suites: dict[str, list[CaseResult]] = {}
    for case in report.cases:
        suites.setdefault(case.suite, []).append(case)
    total_tests = total_failures = 0
    for suite_name, cases in suites.items():
        suite = ET.SubElement(root, "testsuite", name=_xml(suite_name))
        failures = 0
        for case in cases:
            attrs = {"classname": _xml(f"grader.check.{suite_name}"), "name": _xml(case.name), "time": "0"}
            if case.file:
                attrs["file"] = _xml(_display_path(case.file) or "")
            if case.line:
                attrs["line"] = str(case.line)
            el = ET.SubElement(suite, "testcase", attrs)
            failing = [f for f in case.findings if f.severity == "error" or strict]
            if failing:
                failures += 1
                first = failing[0]
                fail = ET.SubElement(el, "failure", message=_xml(first.message), type=first.code)
                fail.text = _xml("\n\n".join(_finding_text(f) for f in failing))
            notes = [f for f in case.findings if f not in failing]
            out = [f"warning: {_finding_text(f)}" for f in notes]
            if case.score is not None:
                rng = f" (expected {case.expected[0]:g}..{case.expected[1]:g})" if case.expected else ""
                out.insert(0, f"score: {case.score:g}/{case.max_score or 0:g}{rng}")
            if out:
                ET.SubElement(el, "system-out").text = _xml("\n".join(out))
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        total_tests += len(cases)
        total_failures += failures
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(report: CheckReport, *, strict: bool = False) -> str:
    """GitHub workflow commands: `::error file=…,line=…,title=…::message`, one per finding, then the summary."""
    lines = []
    for f in report.findings:
        level = "error" if f.severity == "error" or strict else "warning"
        props = []
        path = _display_path(f.file)
        if path:
            props.append(f"file={_gh_prop(path)}")
            if f.line:
                props.append(f"line={f.line}")
        props.append(f"title={_gh_prop(f'grader check: {f.code}')}")
        body = "\n".join([_scoped(f), *f.detail])
        lines.append(f"::{level} {','.join(props)}::{_gh_data(body)}")
    lines.append(summary(report, strict=strict))
    return "\n".join(lines)


_RENDERERS: dict[str, Callable[..., str]] = {"text": format_text, "json": format_json, "junit": format_junit, "github": format_github}


def render(report: CheckReport, fmt: str = "text", *, strict: bool = False) -> str:
    """The report in `fmt` (one of FORMATS)."""
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})") from None
    return renderer(report, strict=strict)
