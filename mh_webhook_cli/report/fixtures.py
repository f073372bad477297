"""How example events and schema findings look (``mhw fixtures``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from mh_webhook_cli.core.catalog import Finding
from mh_webhook_cli.report.console import Format, Line, columns, emit_json, show


def show_fixture_list(descriptions: Mapping[str, tuple[str, str]], output_format: Format) -> None:
    """Each event with its project type and what it represents."""
    if output_format is Format.JSON:
        emit_json(
            [
                {"event": event, "project_type": project_type, "description": summary}
                for event, (project_type, summary) in descriptions.items()
            ]
        )
        return
    header = [(title, "bold") for title in ("event", "project type", "what it represents")]
    rows = [
        [(event, "cyan"), (project_type, ""), (summary, "")]
        for event, (project_type, summary) in descriptions.items()
    ]
    show(columns([header, *rows]))


def show_fixture(document: Mapping[str, Any], output_format: Format) -> None:
    """An event: compact JSON exactly as Magic Hour sends it, or indented for people."""
    if output_format is Format.JSON:
        print(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
    else:
        print(json.dumps(document, indent=2, ensure_ascii=False))


def show_findings(findings: Sequence[Finding], output_format: Format) -> None:
    """The schema check's verdict: valid, or each finding with its path and code."""
    if output_format is Format.JSON:
        emit_json(
            {
                "valid": not findings,
                "findings": [
                    {"path": f.path, "code": f.code, "message": f.message} for f in findings
                ],
            }
        )
    elif findings:
        lines: list[Line] = [[("✗ ", "bold red"), (f"{len(findings)} finding(s)", "bold")]]
        lines += columns(
            [[(f.path, "cyan"), (f.code, "yellow"), (f.message, "")] for f in findings]
        )
        show(lines)
    else:
        show([[("✓ ", "bold green"), ("valid: matches Magic Hour's schema", "")]])
