"""Check the API key, webhook secret, ngrok token and running listeners."""

import typer

from mh_webhook_cli.cli.help_text import examples
from mh_webhook_cli.cli.options import (
    ApiBaseOption,
    ApiKeyOption,
    FormatOption,
    SecretOption,
)
from mh_webhook_cli.errors import ExitCode
from mh_webhook_cli.report.console import Format

EXAMPLES = examples(
    "mhw doctor",
    "mhw doctor --secret mhw_live_...",
    "mhw doctor --format json",
)


def doctor(
    api_key: ApiKeyOption = None,
    api_base: ApiBaseOption = None,
    secret: SecretOption = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Check everything mhw needs, without spending credits; each problem with its fix.

    Exit 0 when nothing failed (warnings allowed), 1 otherwise.
    """
    from mh_webhook_cli.cli import options
    from mh_webhook_cli.magichour.doctor import passed, run_doctor_checks
    from mh_webhook_cli.report.doctor import show_checks

    results = run_doctor_checks(
        lambda: (options.api_key(api_key), options.api_base(api_base)), secret
    )
    show_checks(results, output_format)
    if not passed(results):
        raise typer.Exit(ExitCode.FAILED)
