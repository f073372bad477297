"""How ``mhw check`` results look: the text report card, JSON, and JUnit XML for CI.

Answers come from the handler under test, so their bodies are shown as excerpts: one line,
cut short, and (in text) escaped by :mod:`~mh_webhook_cli.report.console` like everything
else. JUnit gets the same excerpts with what XML 1.0 cannot hold replaced, so that a
handler answering NUL bytes or a lone surrogate cannot make the file unreadable to CI.
"""

from __future__ import annotations

import re
import sys
import textwrap
from typing import Any
from xml.etree import ElementTree

from mh_webhook_cli.report.console import Line, Segment, emit_json, show, warn
from mh_webhook_cli.report.escape import shown
from mh_webhook_cli.send.battery import CHECK_IDS, CheckOutcome, CheckReport, CheckResult, Exchange

EXCERPT_CHARS = 120
"""Characters of an answer's body shown in text; JSON and JUnit get :data:`JSON_EXCERPT_CHARS`."""
JSON_EXCERPT_CHARS = 512
ID_WIDTH = max(map(len, CHECK_IDS))
INDENT = "    "
LABEL_WIDTH = 6

MARKS: dict[CheckOutcome, Segment] = {
    CheckOutcome.PASSED: ("✓", "bold green"),
    CheckOutcome.FAILED: ("✗", "bold red"),
    CheckOutcome.ADVICE: ("!", "bold yellow"),
    CheckOutcome.SKIPPED: ("-", "dim"),
}


def excerpt(exchange: Exchange, limit: int = EXCERPT_CHARS) -> str:
    """The start of an answer's body on one line: whitespace runs become one space."""
    text = " ".join(exchange.body.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def answer_text(exchange: Exchange) -> str:
    """``401 in 3 ms  {"error":...}``, or why there was no answer."""
    if exchange.status is None:
        return f"no answer: {exchange.error}"
    body = excerpt(exchange)
    return f"{exchange.status} in {exchange.latency_ms:.0f} ms" + (f"  {body}" if body else "")


def header_line(url: str) -> Line:
    return [("mhw check ", "bold"), (url, "")]


def result_lines(result: CheckResult, width: int = 80) -> list[Line]:
    """One check: its verdict on one line; what was sent, the answer and the fix under a
    check that did not pass, wrapped to ``width``."""
    room = max(width - ID_WIDTH - 4, 30)
    detail = textwrap.wrap(result.detail, room, break_on_hyphens=False) or [""]
    lines: list[Line] = [
        [MARKS[result.outcome], (" ", ""), (result.id.ljust(ID_WIDTH + 2), "bold"), (detail[0], "")]
    ]
    lines += [" " * (ID_WIDTH + 4) + more for more in detail[1:]]
    if result.outcome in (CheckOutcome.PASSED, CheckOutcome.SKIPPED):
        return lines
    facts = [("sent", result.answer.label if result.answer else result.sent)]
    if result.answer is not None:
        facts.append(("got", answer_text(result.answer)))
    if result.fix:
        facts.append(("fix", result.fix))
    room = max(width - len(INDENT) - LABEL_WIDTH, 30)
    for label, text in facts:
        wrapped = textwrap.wrap(text, room, break_on_hyphens=False) or [""]
        lines.append([(INDENT + label.ljust(LABEL_WIDTH), "dim"), (wrapped[0], "")])
        lines += [INDENT + " " * LABEL_WIDTH + more for more in wrapped[1:]]
    return lines


def summary(report: CheckReport) -> Line:
    counts = {outcome: 0 for outcome in CheckOutcome}
    for result in report.results:
        counts[result.outcome] += 1
    parts = [f"{counts[CheckOutcome.PASSED]} passed", f"{counts[CheckOutcome.FAILED]} failed"]
    parts += [
        f"{counts[outcome]} {outcome.value}"
        for outcome in (CheckOutcome.ADVICE, CheckOutcome.SKIPPED)
        if counts[outcome]
    ]
    mark: Segment = ("✓ ", "bold green") if report.passed else ("✗ ", "bold red")
    return [mark, (", ".join(parts), "bold"), (f"  in {report.duration_s:.2f} s", "dim")]


def check_text(report: CheckReport, width: int = 80) -> list[Line]:
    """The whole report card (the CLI prints it line by line as checks finish instead)."""
    lines: list[Line] = [header_line(report.url), ""]
    for result in report.results:
        lines += result_lines(result, width)
    return [*lines, "", summary(report)]


def check_plain(report: CheckReport, width: int = 100) -> str:
    """The report card as plain text (for a failed pytest assertion), escaped."""
    return "\n".join(
        shown(line if isinstance(line, str) else "".join(text for text, _ in line))
        for line in check_text(report, width)
    )


def check_json(report: CheckReport) -> dict[str, Any]:
    return {
        "url": report.url,
        "passed": report.passed,
        "duration_s": round(report.duration_s, 3),
        "checks": [_result_json(result) for result in report.results],
    }


def _result_json(result: CheckResult) -> dict[str, Any]:
    answer = result.answer
    return {
        "id": result.id,
        "passed": result.passed,
        "outcome": result.outcome.value,
        "severity": result.severity,
        "sent": answer.label if answer else result.sent,
        "status": answer.status if answer else None,
        "latency_ms": round(answer.latency_ms, 3) if answer else None,
        "body": excerpt(answer, JSON_EXCERPT_CHARS) if answer else None,
        "detail": result.detail,
        "fix": result.fix,
    }


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """``text`` as XML 1.0 can hold it: control characters escaped as mhw shows them."""
    return _NOT_XML.sub("\ufffd", shown(text))


def check_junit(report: CheckReport) -> str:
    """JUnit XML: one testcase per check, a failure for each failed one, skipped ones marked.

    Advice is not a failure: it goes to the testcase's ``system-out``, which CI shows with it.
    """
    failures = sum(result.outcome is CheckOutcome.FAILED for result in report.results)
    skipped = sum(result.outcome is CheckOutcome.SKIPPED for result in report.results)
    suites = ElementTree.Element("testsuites")
    suite = ElementTree.SubElement(
        suites,
        "testsuite",
        name="mhw check",
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{report.duration_s:.3f}",
    )
    ElementTree.SubElement(
        ElementTree.SubElement(suite, "properties"),
        "property",
        name="url",
        value=_xml_text(report.url),
    )
    for result in report.results:
        answer = result.answer
        seconds = answer.latency_ms / 1000 if answer else 0.0
        case = ElementTree.SubElement(
            suite, "testcase", classname="mhw.check", name=result.id, time=f"{seconds:.3f}"
        )
        story = "\n".join(
            f"{label}: {_xml_text(text)}"
            for label, text in (
                ("sent", answer.label if answer else result.sent),
                ("got", answer_text(answer) if answer else None),
                ("fix", result.fix),
            )
            if text
        )
        if result.outcome is CheckOutcome.FAILED:
            failure = ElementTree.SubElement(
                case, "failure", message=_xml_text(result.detail), type="failed"
            )
            failure.text = story
        elif result.outcome is CheckOutcome.SKIPPED:
            ElementTree.SubElement(case, "skipped", message=_xml_text(result.detail))
        elif result.outcome is CheckOutcome.ADVICE:
            out = ElementTree.SubElement(case, "system-out")
            out.text = f"advice: {_xml_text(result.detail)}\n{story}"
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(
        suites, encoding="unicode"
    )


class CheckTextReporter:
    """``mhw check`` for people: each check's lines as it finishes, then the summary; a
    warning on stderr when checks were skipped for want of a secret."""

    def __init__(self, width: int) -> None:
        self._width = width

    def start(self, url: str) -> None:
        show([header_line(url), ""])

    def result(self, result: CheckResult) -> None:
        show(result_lines(result, self._width))

    def finish(self, report: CheckReport, *, secret_given: bool) -> None:
        self.summary(report)
        skipped = sum(result.outcome is CheckOutcome.SKIPPED for result in report.results)
        if not secret_given and skipped:
            warn(
                f"no webhook secret: {skipped} check{'s' if skipped > 1 else ''} skipped; pass "
                "--secret or set MAGIC_HOUR_WEBHOOK_SECRET to run them"
            )

    def summary(self, report: CheckReport) -> None:
        show(["", summary(report)])


class CheckJsonReporter(CheckTextReporter):
    """``--format json``: the whole report as one object, once the battery is done."""

    def start(self, url: str) -> None:
        pass

    def result(self, result: CheckResult) -> None:
        pass

    def summary(self, report: CheckReport) -> None:
        emit_json(check_json(report))


class CheckJunitReporter(CheckJsonReporter):
    """``--format junit``: JUnit XML that CI systems show as test results."""

    def summary(self, report: CheckReport) -> None:
        sys.stdout.write(check_junit(report) + "\n")
        sys.stdout.flush()


def check_reporter(output_format: str, width: int) -> CheckTextReporter:
    """The reporter for ``--format`` (text, json or junit)."""
    if output_format == "json":
        return CheckJsonReporter(width)
    if output_format == "junit":
        return CheckJunitReporter(width)
    return CheckTextReporter(width)
