"""How ``mhw trigger`` shows its timeline and verdict, for people and for machines: one
reporter per format for the session's typed events."""

from __future__ import annotations

from typing import Any

from mh_webhook_cli.magichour.trigger import Step, TriggerPlan, TriggerResult, Verdict
from mh_webhook_cli.magichour.trigger_session import (
    CostEstimate,
    Finished,
    Interrupted,
    NotStarted,
    TriggerActivity,
    WaitingAt,
)
from mh_webhook_cli.report.console import Format, Line, Segment, emit_json, error, info, show
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


def _waiting_message(waiting: WaitingAt) -> str:
    if waiting.store is None:
        return f"listening for the job's webhooks at {waiting.where}"
    where = f" at {waiting.where}" if waiting.where else ""
    return f"watching the store of the running listener{where}: {waiting.store}"


def _cost_message(cost: CostEstimate) -> str:
    balance = f" of your {cost.balance:,}" if cost.balance is not None else ""
    return f"a real {cost.kind} job costs about {cost.credits} credit(s){balance}"


class TriggerTextReporter:
    """Shows a run of ``mhw trigger`` for people: the timeline as it happens, then the verdict;
    progress on stderr. Implements
    :class:`~mh_webhook_cli.magichour.trigger_session.TriggerReporter`.
    """

    def report(self, activity: TriggerActivity) -> None:
        if isinstance(activity, Step):
            self.step(activity)
        elif isinstance(activity, WaitingAt):
            info(_waiting_message(activity))
        elif isinstance(activity, CostEstimate):
            info(_cost_message(activity))
        elif isinstance(activity, NotStarted):
            error(activity.message)
        elif isinstance(activity, Interrupted):
            error("interrupted: the job, if it started, goes on without us")
        elif isinstance(activity, Finished):
            self.finished(activity)

    def step(self, step: Step) -> None:
        show([step_line(step)])

    def finished(self, finished: Finished) -> None:
        show(result_lines(finished.result))


class TriggerJsonReporter(TriggerTextReporter):
    """For machines: the whole run as one JSON object at the end; progress on stderr as for
    people."""

    def step(self, step: Step) -> None:
        """In the final object's ``timeline``."""

    def finished(self, finished: Finished) -> None:
        emit_json(result_json(finished.result, finished.plan))


def trigger_reporter(output_format: Format) -> TriggerTextReporter:
    """The reporter for ``--format``."""
    return TriggerJsonReporter() if output_format is Format.JSON else TriggerTextReporter()
