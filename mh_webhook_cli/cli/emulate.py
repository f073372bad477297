"""Run a local Magic Hour API that delivers signed webhooks, with Magic Hour's retries."""

from pathlib import Path
from typing import Annotated

import typer

from mh_webhook_cli.cli.help_text import examples
from mh_webhook_cli.cli.options import (
    FormatOption,
    HostOption,
    PortOption,
    SigningSecretOption,
    http_url,
    patterns,
    signing_secret,
)
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.report.console import Format

EXAMPLES = examples(
    "mhw emulate --webhook-url http://127.0.0.1:8787/",
    "mhw emulate --webhook-url http://127.0.0.1:8787/ --fail-rate 0.5",
    "mhw emulate --speed 10 --render-seconds 30 --events video.*",
)


def emulate(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8788,
    webhook_url: Annotated[
        list[str] | None,
        typer.Option(
            "--webhook-url",
            metavar="URL",
            help="Deliver every event here, signed, as a Developer Hub webhook would "
            "(repeatable; needs a secret).",
            show_default=False,
            rich_help_panel="Webhooks",
        ),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            help="The event types the registration lists, e.g. 'image.*'; all by default.",
            show_default=False,
            rich_help_panel="Webhooks",
            metavar="TYPES",
        ),
    ] = None,
    secret: SigningSecretOption = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Accept only this API key; by default any non-empty Bearer key.",
            show_default=False,
            rich_help_panel="Account",
            metavar="KEY",
        ),
    ] = None,
    credits: Annotated[
        int,
        typer.Option(
            help="Credits on the account; a job that needs more gets 402.",
            min=0,
            rich_help_panel="Account",
            metavar="N",
        ),
    ] = 1_000_000,
    tier: Annotated[
        str,
        typer.Option(
            help="The account's plan (free, creator, pro, business): paid models such as "
            "gpt-image-2 need creator or above, and video defaults follow it.",
            rich_help_panel="Account",
            metavar="PLAN",
        ),
    ] = "free",
    queue_seconds: Annotated[
        float,
        typer.Option(
            help="Seconds a job stays queued.", min=0, rich_help_panel="Jobs", metavar="SECONDS"
        ),
    ] = 0.5,
    render_seconds: Annotated[
        float,
        typer.Option(
            help="Seconds a job renders. Under 1 s no image.started is sent, as Magic Hour "
            "skips it for fast jobs (audio.started is always sent).",
            min=0,
            rich_help_panel="Jobs",
            metavar="SECONDS",
        ),
    ] = 2.0,
    fail_rate: Annotated[
        float,
        typer.Option(
            help="Share of jobs that end in error (credits refunded); 1 fails every job.",
            min=0,
            max=1,
            rich_help_panel="Jobs",
            metavar="SHARE",
        ),
    ] = 0.0,
    error_code: Annotated[
        str | None,
        typer.Option(
            help="The error failed jobs report, e.g. content_policy_violation (image) or "
            "invalid_voice (audio); a kind without it uses its first documented code.",
            show_default=False,
            rich_help_panel="Jobs",
            metavar="CODE",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Make project ids and which jobs fail repeatable.",
            show_default=False,
            rich_help_panel="Jobs",
            metavar="N",
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            help="Run the retry schedule this many times faster: 100 retries after 10 ms, "
            "20 ms, 40 ms and on, instead of 1 s, 2 s, 4 s.",
            min=0.001,
            rich_help_panel="Webhooks",
            metavar="FACTOR",
        ),
    ] = 1.0,
    delivery_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a handler has to answer before the attempt counts as failed.",
            min=0.001,
            rich_help_panel="Webhooks",
            metavar="SECONDS",
        ),
    ] = 10.0,
    delivery_concurrency: Annotated[
        int,
        typer.Option(
            help="Attempts in flight to each webhook URL at most; further deliveries wait "
            "their turn in order.",
            min=1,
            max=256,
            rich_help_panel="Webhooks",
            metavar="N",
        ),
    ] = 16,
    max_retry_time: Annotated[
        float,
        typer.Option(
            help="Keep retrying a failing delivery this long, in seconds before --speed "
            "(Magic Hour: 24 h).",
            min=0,
            rich_help_panel="Webhooks",
            metavar="SECONDS",
        ),
    ] = 86400.0,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            help="Write the URL (JSON) here once accepting, for scripts to wait on.", metavar="PATH"
        ),
    ] = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Run a local Magic Hour API that delivers signed webhooks, with Magic Hour's retries.

    Serves GET /v1/account, POST /v1/ai-image-generator, /v1/ai-voice-generator,
    /v1/text-to-video and /v1/image-to-video, GET and DELETE /v1/{image,audio,video}-projects/ID,
    with the real API's enums, model prices and errors (from the official SDK). Jobs
    go queued → rendering → complete (or error with --fail-rate) and send their events to
    every --webhook-url, retrying failures after 1 s, 2 s, 4 s and on. Point clients at it with
    MAGIC_HOUR_API_BASE=http://127.0.0.1:8788. Ctrl-C stops it (exit 0) with a summary.
    """
    from mh_webhook_cli.event_loop import run_loop
    from mh_webhook_cli.magichour.emulator import Emulator, EmulatorConfig
    from mh_webhook_cli.receive.session import write_ready_file
    from mh_webhook_cli.report.emulate import emulate_reporter

    urls = tuple(http_url(url, "--webhook-url") for url in webhook_url or [])
    # Only a registration signs: without a webhook URL, a configured secret is not needed.
    signer = signing_secret(secret) if urls else None
    if api_key is not None and not api_key.strip():
        raise UsageError("--api-key is empty")
    if ready_file is not None and not ready_file.parent.is_dir():
        raise UsageError(f"--ready-file: no directory {ready_file.parent}")
    config = EmulatorConfig(
        api_key=api_key,
        credits=credits,
        tier=tier,
        queue_seconds=queue_seconds,
        render_seconds=render_seconds,
        fail_rate=fail_rate,
        error_code=error_code,
        seed=seed,
        webhook_urls=urls,
        events=patterns(events, "--events"),
        secret=signer,
        speed=speed,
        delivery_timeout=delivery_timeout,
        delivery_concurrency=delivery_concurrency,
        max_retry_seconds=max_retry_time,
    )
    reporter = emulate_reporter(output_format, config)
    emulator = Emulator(config, on_event=reporter.activity)

    def ready(url: str) -> None:
        reporter.ready(url)
        if ready_file is not None:
            write_ready_file(ready_file, {"url": url, "port": emulator.port})

    async def emulating() -> int:
        import asyncio
        import signal

        from mh_webhook_cli.errors import ExitCode
        from mh_webhook_cli.report.writer import session_output

        loop = asyncio.get_running_loop()

        def reader_gone() -> None:  # ends the emulator as SIGTERM does: quietly
            loop.call_soon_threadsafe(signal.raise_signal, signal.SIGTERM)

        with session_output(reader_gone) as output:
            code = await emulator.run_until_stopped(host, port, ready)
            reporter.finish(emulator.stats)
            reporter.summary(emulator.stats, output.close_stdout())
        return ExitCode.BROKEN_PIPE if output.stdout.reader_gone else code

    raise typer.Exit(run_loop(emulating()))
