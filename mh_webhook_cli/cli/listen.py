"""Receive webhooks locally: show each one live, verify it, store it, forward it."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.help_text import examples
from mh_webhook_cli.cli.listener_options import ListenerOptions, listener_options
from mh_webhook_cli.cli.options import (
    FormatOption,
    extra_headers,
    http_url,
    known_event_pattern,
    patterns,
)
from mh_webhook_cli.cli.ui import DEFAULT_UI_PORT, UiOption, UiPortOption
from mh_webhook_cli.core.limits import (
    IDLE_TIMEOUT_DEFAULT,
    MAGIC_HOUR_TIMEOUT_SECONDS,
    MAX_BODY_DEFAULT,
    MAX_CONNECTIONS_DEFAULT,
    READ_TIMEOUT_DEFAULT,
)
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.report.console import Format

if TYPE_CHECKING:
    from mh_webhook_cli.receive.activity import Reporter


EXAMPLES = examples(
    "mhw listen --secret $MAGIC_HOUR_WEBHOOK_SECRET --reject-invalid",
    "mhw listen --forward-to http://127.0.0.1:8000/webhook --tunnel",
    "mhw listen --expect video.completed --timeout 600 --format json",
)

ANSWER = "Answering"
FORWARD = "Forwarding"
LIMITS = "Limits"
CI = "For CI"
OUTPUT = "Output"


@listener_options
def listen(
    listener: ListenerOptions,
    path: Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="Accept only this path (404 elsewhere); any by default.",
            rich_help_panel=ANSWER,
        ),
    ] = None,
    tolerance: Annotated[
        int,
        typer.Option(
            metavar="SECONDS",
            help="Allowed timestamp age; 0 turns the check off.",
            min=0,
            rich_help_panel=ANSWER,
        ),
    ] = 300,
    reject_invalid: Annotated[
        bool,
        typer.Option(
            "--reject-invalid",
            help="Answer 401 to a bad or missing signature, like production.",
            rich_help_panel=ANSWER,
        ),
    ] = False,
    respond_status: Annotated[
        int,
        typer.Option(
            metavar="CODE",
            help="Status to answer with (simulate a failing handler).",
            min=100,
            max=599,
            rich_help_panel=ANSWER,
        ),
    ] = 200,
    respond_body: Annotated[
        str,
        typer.Option(
            metavar="TEXT",
            help='Body of a 2xx answer; {"received":true} by default.',
            show_default=False,
            rich_help_panel=ANSWER,
        ),
    ] = '{"received":true}',
    respond_delay: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Wait before answering (Magic Hour gives up after 10).",
            min=0,
            rich_help_panel=ANSWER,
        ),
    ] = 0.0,
    mirror_status: Annotated[
        bool,
        typer.Option(
            "--mirror-status",
            help="Answer with the status of the first --forward-to handler.",
            rich_help_panel=ANSWER,
        ),
    ] = False,
    forward_to: Annotated[
        list[str] | None,
        typer.Option(
            "--forward-to",
            metavar="[TYPES=]URL",
            help="Forward each request's exact bytes and headers to your handler; "
            "'video.*=URL' only those types (repeatable).",
            rich_help_panel=FORWARD,
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            "-H",
            metavar="'NAME: VALUE'",
            help="Add a header to each forward (repeatable).",
            show_default=False,
            rich_help_panel=FORWARD,
        ),
    ] = None,
    forward_timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Time a forward may take in all: connecting, sending, and the handler's "
            "complete answer.",
            min=0.1,
            rich_help_panel=FORWARD,
        ),
    ] = MAGIC_HOUR_TIMEOUT_SECONDS,
    max_body: Annotated[
        int,
        typer.Option(
            metavar="BYTES",
            help="Largest body accepted; then 413.",
            min=1,
            rich_help_panel=LIMITS,
        ),
    ] = MAX_BODY_DEFAULT,
    read_timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Time a client may take to send a request; then 408.",
            min=0.1,
            rich_help_panel=LIMITS,
        ),
    ] = READ_TIMEOUT_DEFAULT,
    idle_timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Time a connection may stay silent; then it is closed.",
            min=0.1,
            rich_help_panel=LIMITS,
        ),
    ] = IDLE_TIMEOUT_DEFAULT,
    max_connections: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="Connections open at once; when full, the longest idle one is closed, else 503.",
            min=1,
            rich_help_panel=LIMITS,
        ),
    ] = MAX_CONNECTIONS_DEFAULT,
    expect: Annotated[
        str | None,
        typer.Option(
            metavar="TYPES",
            help="Exit 0 once these types (comma-separated, globs) arrived validly signed; "
            "needs --timeout.",
            rich_help_panel=CI,
        ),
    ] = None,
    count: Annotated[
        int,
        typer.Option(
            metavar="N", help="With --expect: how many of each.", min=1, rich_help_panel=CI
        ),
    ] = 1,
    timeout: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Stop after this long (exit 1 with --expect).",
            min=0.1,
            rich_help_panel=CI,
        ),
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="Write the URL here (JSON) once accepting, for scripts to wait on.",
            rich_help_panel=CI,
        ),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            metavar="TYPES",
            help="Show and forward only these, e.g. 'video.*,image.completed' (all are stored).",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also print payloads and handler answers.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    ui: UiOption = False,
    ui_port: UiPortOption = DEFAULT_UI_PORT,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Receive webhooks locally: show each one live, verify, store and forward it."""
    from mh_webhook_cli.receive.http import Limits
    from mh_webhook_cli.receive.listener import ListenConfig
    from mh_webhook_cli.send.forward import ForwardRoute, refuse_forwarding_loop

    secrets = listener.secrets(required=False)
    if reject_invalid and not secrets:
        raise UsageError("--reject-invalid needs a webhook secret (--secret or config)")
    routes = tuple(ForwardRoute.parse(target) for target in forward_to or [])
    if mirror_status and not routes:
        raise UsageError("--mirror-status needs --forward-to")
    for route in routes:
        http_url(route.url, "--forward-to")
        if route.pattern is not None:
            known_event_pattern(route.pattern, "--forward-to")
    refuse_forwarding_loop(routes, listener.host, listener.port)
    if path is not None and not path.startswith("/"):
        raise UsageError(f"--path {path!r} must start with /")
    expected = patterns(expect, "--expect")
    if expected and not secrets:
        raise UsageError("--expect waits for validly signed events: it needs a webhook secret")
    if expected and timeout is None:
        # No wait suits every run (a 'mhw send' takes milliseconds, a video job minutes), and
        # a CI job that hangs until the CI's own limit is the worst way to fail.
        raise UsageError("--expect needs --timeout SECONDS: how long to wait before exit 1")
    if ready_file is not None and not ready_file.parent.is_dir():
        raise UsageError(f"--ready-file: no directory {ready_file.parent}")
    config = ListenConfig(
        secrets=secrets,
        tolerance=tolerance,
        path=path,
        respond_status=respond_status,
        respond_body=respond_body.encode(),
        respond_delay=respond_delay,
        reject_invalid=reject_invalid,
        mirror_status=mirror_status,
        event_patterns=patterns(events, "--events"),
        forwards=routes,
        forward_headers=tuple(extra_headers(header)),
        forward_timeout=forward_timeout,
    )
    store_path = listener.store_path()
    from mh_webhook_cli.event_loop import run_loop
    from mh_webhook_cli.receive.session import Session
    from mh_webhook_cli.report.listen import listen_reporter

    plan = listener.tunnel_request()
    limits = Limits(
        max_body=max_body,
        read_timeout=read_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
    )
    reporter: Reporter = listen_reporter(output_format, verbose)
    web = None
    if ui:
        from mh_webhook_cli.cli.ui import inspector
        from mh_webhook_cli.report.inspector import InspectorFeed

        first_target = routes[0].url if routes else None
        web = inspector(store_path, listener.store, secrets, tolerance, ui_port, first_target)
        reporter = InspectorFeed(reporter, web)
    session = Session(
        config,
        listener.host,
        listener.port,
        store_path,
        limits,
        reporter,
        expected,
        count,
        plan,
        inspector=web,
    )
    raise typer.Exit(run_loop(session.run(timeout, ready_file)))
