"""How ``mhw trigger`` shows its timeline and verdict, for people and for machines."""

from __future__ import annotations

from typing import Any

from mh_webhook_cli.magichour.trigger import Step, TriggerPlan, TriggerResult, Verdict
from mh_webhook_cli.report.console import Line, Segment
from mh_webhook_cli.report.listen import verdict_segment


def step_line(step: Step) -> Line:
    """``  +2.41s  webhook  image.completed  ✓ signed``"""
    line: list[Segment] = [
        (f"  +{step.at:6.2f}s  ", "dim"),
        (f"{step.source:<8}", "magenta" if step.source == "webhook" else "blue"),
        (f"{step.what:<16}", "bold cyan" if step.source == "webhook" else "bold"),
    ]
    if step.verification is not None:
        line += [("  ", ""), verdict_segment(step.verification)]
    if step.detail:
        line += [("  ", ""), (step.detail, "dim")]
    return line


def result_lines(result: TriggerResult) -> list[Line]:
    good = result.verdict is Verdict.OK
    lines: list[Line] = [
        [
            ("✓ " if good else "✗ ", "bold green" if good else "bold red"),
            (result.verdict.value, "bold green" if good else "bold red"),
            (f"  {result.diagnosis}", ""),
        ]
    ]
    lines += [[("  saved ", "dim"), (str(path), "")] for path in result.downloads]
    return lines


def result_json(result: TriggerResult, plan: TriggerPlan) -> dict[str, Any]:
    """The whole run as one object: verdict, exit code, diagnosis, timeline."""
    job = result.job
    return {
        "verdict": result.verdict.value,
        "exit_code": int(result.verdict.exit_code),
        "diagnosis": result.diagnosis,
        "kind": plan.kind,
        "project_id": job.id if job else None,
        "credits_charged": job.credits_charged if job else None,
        "endpoint": plan.endpoint or None,
        "api_status": result.project.get("status") if result.project else None,
        "timeline": [
            {
                "at": step.at,
                "source": step.source,
                "what": step.what,
                "detail": step.detail or None,
                "verification": step.verification,
            }
            for step in result.timeline
        ],
        "other_requests": result.other_requests,
        "downloads": [str(path) for path in result.downloads],
    }
