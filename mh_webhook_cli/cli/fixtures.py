"""``mhw fixtures``: the nine Magic Hour events as realistic examples, and a schema check."""

from datetime import datetime, timezone
from typing import Annotated

import typer

from mh_webhook_cli.cli.completion import event_types
from mh_webhook_cli.cli.help_text import examples
from mh_webhook_cli.cli.options import AssignmentsOption, FormatOption, command_group, read_input
from mh_webhook_cli.errors import ExitCode, UsageError
from mh_webhook_cli.report.console import Format

app = command_group()


@app.command("list", epilog=examples("mhw fixtures list", "mhw fixtures list --format json"))
def list_command(output_format: FormatOption = Format.TEXT) -> None:
    """List the events: project type and what each one represents."""
    from mh_webhook_cli.core.fixtures import FIXTURE_DESCRIPTIONS
    from mh_webhook_cli.report.fixtures import show_fixture_list

    show_fixture_list(FIXTURE_DESCRIPTIONS, output_format)


@app.command(
    "show",
    epilog=examples(
        "mhw fixtures show video.completed",
        "mhw fixtures show image.errored --set payload.error.code=no_source_face",
        "mhw fixtures show audio.completed > event.json",
    ),
)
def show_command(
    event: Annotated[
        str, typer.Argument(help="One of the nine event types.", autocompletion=event_types)
    ],
    project_id: Annotated[
        str | None, typer.Option("--id", help="Project id to use.", show_default=False)
    ] = None,
    error_code: Annotated[
        str | None,
        typer.Option(help="Error code of an errored event (a documented one).", show_default=False),
    ] = None,
    assignments: AssignmentsOption = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Print an event as Magic Hour would send it (--format json: compact, exactly as sent)."""
    from mh_webhook_cli.core.fixtures import apply_overrides, build_fixture
    from mh_webhook_cli.report.fixtures import show_fixture

    if event not in event_types(""):
        raise UsageError(f"unknown event {event!r}; one of: {', '.join(event_types(''))}")
    document = build_fixture(
        event, project_id=project_id, error_code=error_code, now=datetime.now(timezone.utc)
    )
    show_fixture(apply_overrides(document, assignments or []), output_format)


@app.command(
    "validate",
    epilog=examples(
        "mhw fixtures validate event.json",
        "mhw events show 12 --format json | jq .body | mhw fixtures validate -",
    ),
)
def validate_command(
    file: Annotated[
        str | None,
        typer.Argument(help="JSON event to check; - or omitted reads stdin.", show_default=False),
    ] = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Check an event against Magic Hour's schema. Exit 1 when there are findings."""
    from mh_webhook_cli.core.catalog import validate_body
    from mh_webhook_cli.report.fixtures import show_findings

    findings = validate_body(read_input(file, what="event"))
    show_findings(findings, output_format)
    if findings:
        raise typer.Exit(ExitCode.FAILED)
