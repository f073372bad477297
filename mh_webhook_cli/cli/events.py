"""``mhw events``: look at the requests ``mhw listen`` captured, export them, clear them."""

from __future__ import annotations

import re
import sys
import time
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.options import (
    FormatOption,
    HeaderOption,
    SigningSecretOption,
    command_group,
    extra_headers,
    http_url,
    signing_secret,
)
from mh_webhook_cli.cli.ui import ui
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS
from mh_webhook_cli.errors import ExitCode, UsageError
from mh_webhook_cli.report.console import Format, emit_json, info, show

if TYPE_CHECKING:
    from mh_webhook_cli.core.request import Received
    from mh_webhook_cli.receive.store import Store

app = command_group()

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        metavar="PATH",
        help="Capture store to read; by default $MHW_STORE or events.sqlite3 in mhw's data dir.",
        show_default=False,
    ),
]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ExportFormat(str, Enum):
    JSONL = "jsonl"
    HAR = "har"


def _open(path: Path | None) -> Store | None:
    """The store, or None when nothing was ever captured: reading must not create one."""
    from mh_webhook_cli.receive.store import Store, default_store_path

    resolved = path.expanduser() if path is not None else default_store_path()
    if not resolved.exists():
        return None
    return Store(resolved)


def stored_request(request_id: int, path: Path | None) -> Received:
    """One captured request, or a one-line error (exit 1) naming what to run instead."""
    opened = _open(path)
    found = None
    if opened is not None:
        with opened:
            found = opened.get(request_id)
    if found is None:
        raise UsageError(f"no request {request_id} in the capture store (see 'mhw events list')")
    return found


def parse_since(text: str, now: float) -> float:
    """``30m``, ``1h``, ``2d`` ago, or an ISO 8601 time (UTC when it has no zone)."""
    duration = _DURATION.fullmatch(text.strip())
    if duration:
        return now - float(duration.group(1)) * _UNIT_SECONDS[duration.group(2).lower()]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration (30m, 1h, 2d) nor an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@app.command("list")
def list_command(
    event_glob: Annotated[
        str | None,
        typer.Option(
            "--type",
            "-t",
            metavar="GLOB",
            help="Only these events, e.g. 'video.*'.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only requests received since: 30m, 1h, 2d ago, or an ISO 8601 time.",
            show_default=False,
        ),
    ] = None,
    invalid: Annotated[
        bool,
        typer.Option(
            "--invalid", help="Only requests with a bad or missing signature or schema findings."
        ),
    ] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most N.", min=1)] = 20,
    show_all: Annotated[bool, typer.Option("--all", help="No limit.")] = False,
    store: StoreOption = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """List captured requests, newest first."""
    from mh_webhook_cli.report.events import list_text, summary_json

    cutoff = None if since is None else parse_since(since, time.time())
    opened = _open(store)
    if opened is None:
        requests = []
    else:
        with opened:
            requests = opened.list(
                event_glob=event_glob,
                since=cutoff,
                invalid_only=invalid,
                limit=None if show_all else limit,
            )
    if output_format is Format.JSON:
        emit_json([summary_json(request) for request in requests])
    elif requests:
        show(list_text(requests))


@app.command("show")
def show_command(
    request_id: Annotated[int, typer.Argument(metavar="ID", help="The id from 'mhw events list'.")],
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Print the request exactly as received, as raw HTTP "
            "(pipe it to 'mhw verify --request -').",
        ),
    ] = False,
    store: StoreOption = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Show one captured request: verdicts, headers and body."""
    from mh_webhook_cli.report.events import detail_json, detail_text, raw_request

    if raw and output_format is Format.JSON:
        raise UsageError("give --raw or --format json, not both")
    found = stored_request(request_id, store)
    if raw:
        sys.stdout.buffer.write(raw_request(found))
        sys.stdout.buffer.flush()
    elif output_format is Format.JSON:
        emit_json(detail_json(found))
    else:
        show(detail_text(found))


@app.command("export")
def export_command(
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="jsonl: one JSON object per line; har: for browser devtools.",
            case_sensitive=False,
        ),
    ] = ExportFormat.JSONL,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write here instead of stdout.",
            show_default=False,
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Export every captured request, oldest first."""
    from mh_webhook_cli.core.json_text import dumps
    from mh_webhook_cli.report.events import HAR_TAIL, detail_json, har_entry, har_head

    opened = _open(store)
    try:
        target = sys.stdout if output is None else output.expanduser().open("w", encoding="utf-8")
    except OSError as failure:
        raise UsageError(f"cannot write {output}: {failure.strerror}") from None
    requests = iter(()) if opened is None else opened.iter_oldest_first()
    count = 0
    try:
        if export_format is ExportFormat.HAR:
            target.write(har_head())
        for request in requests:
            if export_format is ExportFormat.HAR:
                target.write(("," if count else "") + dumps(har_entry(request)))
            else:
                target.write(dumps(detail_json(request)) + "\n")
            count += 1
        if export_format is ExportFormat.HAR:
            target.write(HAR_TAIL)
    finally:
        if opened is not None:
            opened.close()
        if output is not None:
            target.close()
    if output is not None:
        info(f"Exported {count} request{'' if count == 1 else 's'} to {output}")


@app.command("replay")
def replay_command(
    request_id: Annotated[int, typer.Argument(metavar="ID", help="The id from 'mhw events list'.")],
    to: Annotated[
        str, typer.Option("--to", metavar="URL", help="Where to send it.", show_default=False)
    ],
    resign: Annotated[
        bool,
        typer.Option(
            "--resign",
            help="Sign again with a fresh timestamp (the original is stale after 5 minutes).",
        ),
    ] = False,
    secret: SigningSecretOption = None,
    header: HeaderOption = None,
    timeout: Annotated[
        float,
        typer.Option(
            help="Seconds the whole exchange may take: connecting, sending, and the "
            "handler's complete answer (Magic Hour allows 10).",
            min=0.001,
        ),
    ] = MAGIC_HOUR_TIMEOUT_SECONDS,
    store: StoreOption = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Send a captured request again: the exact bytes and headers, or re-signed with --resign."""
    from mh_webhook_cli.core.request import HOP_BY_HOP_HEADERS
    from mh_webhook_cli.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER
    from mh_webhook_cli.report.send import send_json, send_text
    from mh_webhook_cli.send.client import FORWARDED_HEADER
    from mh_webhook_cli.send.delivery import (
        Delivery,
        Signer,
        make_client,
        send_once,
        tls_context,
    )

    http_url(to, "--to")
    extra = extra_headers(header)
    found = stored_request(request_id, store)
    # The hop header too: a replay is a new delivery, which the target may forward.
    dropped = HOP_BY_HOP_HEADERS | {FORWARDED_HEADER}
    if resign:
        dropped |= {SIGNATURE_HEADER, TIMESTAMP_HEADER}
    original = [(name, value) for name, value in found.headers if name.lower() not in dropped]
    signer = Signer(signing_secret(secret) if resign else None)
    delivery = Delivery(to, found.body, found.event_type, [*original, *extra])
    with make_client(tls_context(insecure=False, cacert=None)) as client:
        result = send_once(client, delivery, signer, timeout)
    if output_format is Format.JSON:
        emit_json(send_json(result, None))
    else:
        show(send_text(result, None))
    if not result.ok():
        raise typer.Exit(ExitCode.FAILED)


@app.command("clear")
def clear_command(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    store: StoreOption = None,
) -> None:
    """Delete every captured request (asks first, unless --yes)."""
    opened = _open(store)
    if opened is None:
        info("The capture store is empty.")
        return
    with opened:
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "refusing to delete captured requests without --yes (stdin is not a terminal)"
                )
            count = opened.count()
            if not typer.confirm(f"Delete all {count} captured requests in {opened.path}?"):
                raise typer.Exit(ExitCode.FAILED)
        deleted = opened.clear()
    info(f"Deleted {deleted} request{'' if deleted == 1 else 's'}.")


app.command("ui")(ui)
