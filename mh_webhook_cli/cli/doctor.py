"""Check the API key, webhook secret, ngrok token and running listeners."""

from __future__ import annotations

import typer

from mh_webhook_cli.cli.options import (
    ApiBaseOption,
    ApiKeyOption,
    FormatOption,
    SecretOption,
)
from mh_webhook_cli.errors import ExitCode
from mh_webhook_cli.report.console import Format, emit_json, show


def doctor(
    api_key: ApiKeyOption = None,
    api_base: ApiBaseOption = None,
    secret: SecretOption = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Check everything mhw needs, without spending credits; each problem with its fix.

    Exit 0 when nothing failed (warnings allowed), 1 otherwise.
    """
    import asyncio

    from mh_webhook_cli.cli import options
    from mh_webhook_cli.config_file import effective
    from mh_webhook_cli.core.settings import WEBHOOK_SECRET
    from mh_webhook_cli.magichour import doctor as checks
    from mh_webhook_cli.report.doctor import doctor_json, doctor_text

    def api_key_checks() -> list[checks.Check]:
        key, base = options.api_key(api_key), options.api_base(api_base)
        return [asyncio.run(checks.check_api_key(key, base))]

    results = [
        *checks.guarded("api_key", api_key_checks),
        *checks.guarded(
            "webhook_secret",
            lambda: checks.check_webhook_secrets(effective(WEBHOOK_SECRET), secret),
        ),
        *checks.guarded("ngrok_authtoken", checks.check_ngrok_authtoken),
        *checks.guarded("listener", checks.check_listeners),
    ]
    if output_format is Format.JSON:
        emit_json(doctor_json(results))
    else:
        show(doctor_text(results))
    if not checks.passed(results):
        raise typer.Exit(ExitCode.FAILED)
