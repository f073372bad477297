"""How ``mhw doctor`` results look: a reporter per format, over text and JSON renderers."""

from __future__ import annotations

from typing import Any

from mh_webhook_cli.magichour.doctor import Check, passed
from mh_webhook_cli.report.console import (
    Format,
    Line,
    Segment,
    columns,
    emit_json,
    show,
    terminal_width,
    wrapped,
)

MARKS: dict[str, Segment] = {
    "ok": ("✓", "bold green"),
    "warn": ("!", "bold yellow"),
    "fail": ("✗", "bold red"),
}


def doctor_json(checks: list[Check]) -> dict[str, Any]:
    return {
        "ok": passed(checks),
        "checks": [
            {"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix} for c in checks
        ],
    }


def doctor_text(checks: list[Check], width: int | None = None) -> list[Line]:
    """One aligned line per check, its fix under it when it is not ok, then a verdict.

    On a terminal narrower than a detail or a fix, it is folded at spaces under itself:
    instructions are read in full, so they are not cut.
    """
    rows = [[MARKS[c.status], (c.name, "bold"), (c.detail, "")] for c in checks]
    lines: list[Line] = []
    for check, line in zip(checks, columns(rows), strict=True):
        lines += wrapped(line, width)
        if check.fix:
            lines += wrapped([("  → ", "dim"), (check.fix, "")], width)
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    warnings = f"{warned} warning{'' if warned == 1 else 's'}"
    if failed:
        lines.append([("✗ ", "bold red"), (f"{failed} failed, {warnings}", "bold")])
    elif warned:
        lines.append([("✓ ", "bold green"), (f"ready, with {warnings}", "bold")])
    else:
        lines.append([("✓ ", "bold green"), ("all good", "bold")])
    return lines


def show_checks(checks: list[Check], output_format: Format) -> None:
    """The checks on stdout, as ``--format`` asks: the doctor's one report."""
    if output_format is Format.JSON:
        emit_json(doctor_json(checks))
    else:
        show(doctor_text(checks, terminal_width("stdout")))
