"""How ``mhw doctor`` results look: text and JSON side by side, as in :mod:`render`."""

from __future__ import annotations

from typing import Any

from mh_webhook_cli.magichour.doctor import Check, passed
from mh_webhook_cli.report.console import Line, Segment, columns

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


def doctor_text(checks: list[Check]) -> list[Line]:
    """One aligned line per check, its fix under it when it is not ok, then a verdict."""
    rows = [[MARKS[c.status], (c.name, "bold"), (c.detail, "")] for c in checks]
    lines: list[Line] = []
    for check, line in zip(checks, columns(rows), strict=True):
        lines.append(line)
        if check.fix:
            lines.append([("  → ", "dim"), (check.fix, "")])
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
