"""Grade a webhook handler against Magic Hour's rules: forged, stale, unsigned, retried, late."""

from enum import Enum
from typing import Annotated

import typer

from mh_webhook_cli.cli.help_text import examples
from mh_webhook_cli.cli.options import HeaderOption, SigningSecretOption, extra_headers, http_url
from mh_webhook_cli.errors import ExitCode


class CheckFormat(str, Enum):
    TEXT = "text"
    JSON = "json"
    JUNIT = "junit"


CHECKS_HELP = (
    "signed-events-accepted, forged-signature-rejected, wrong-secret-rejected, "
    "tampered-body-rejected, stale-timestamp-rejected, future-timestamp-rejected, "
    "unsigned-rejected, retry-accepted, unknown-fields-accepted, unknown-event-type-accepted, "
    "non-json-not-5xx, answers-within-10s, burst-within-10s"
)
"""The ids in --only's help (the battery's ids, written out: importing it costs a --help)."""


EXAMPLES = examples(
    "mhw check http://127.0.0.1:8000/webhook",
    "mhw check http://127.0.0.1:8000/webhook --only forged-signature-rejected",
    "mhw check http://127.0.0.1:8000/webhook --format junit > report.xml",
)


def check(
    url: Annotated[str, typer.Argument(help="The handler's URL.", show_default=False)],
    secret: SigningSecretOption = None,
    output_format: Annotated[
        CheckFormat,
        typer.Option(
            "--format",
            "-f",
            help="text for people, json for machines, junit for CI test reports.",
            case_sensitive=False,
        ),
    ] = CheckFormat.TEXT,
    only: Annotated[
        list[str] | None,
        typer.Option(
            metavar="IDS",
            help=f"Run only these checks, comma-separated (repeatable): {CHECKS_HELP}.",
            show_default=False,
        ),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option(
            metavar="IDS", help="Skip these checks (ids as for --only).", show_default=False
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            max=100,
            help="Deliveries sent at once by burst-within-10s.",
        ),
    ] = 20,
    headers: HeaderOption = None,
) -> None:
    """Send a battery of deliveries to a handler and grade each answer. Exit 0 when every
    required check passes, 1 when one fails, 2 usage.

    Without a webhook secret, the checks that need a genuine signature are skipped.
    """
    import shutil

    from mh_webhook_cli.cli.options import signing_secret
    from mh_webhook_cli.report.check import check_reporter
    from mh_webhook_cli.send.battery import run_checks, select_checks

    http_url(url, "URL")
    only_ids, skip_ids = _ids(only), _ids(skip)
    select_checks(only_ids, skip_ids)  # an unknown id is a usage error (InvalidValue)
    extra = extra_headers(headers)
    found = signing_secret(secret, required=False)
    reporter = check_reporter(output_format.value, shutil.get_terminal_size().columns)
    reporter.start(url)
    report = run_checks(
        url,
        found,
        only=only_ids,
        skip=skip_ids,
        burst=concurrency,
        headers=extra,
        on_result=reporter.result,
    )
    reporter.finish(report, secret_given=bool(found))
    if not report.passed:
        raise typer.Exit(ExitCode.FAILED)


def _ids(values: list[str] | None) -> list[str] | None:
    """``--only a,b --only c`` as ``[a, b, c]``; None when not given."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
