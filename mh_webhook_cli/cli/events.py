"""``mhw events``: look at the requests ``mhw listen`` captured, export them, clear them."""

import contextlib
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mh_webhook_cli.cli.options import (
    FormatOption,
    HeaderOption,
    SigningSecretOption,
    StoreOption,
    command_group,
    extra_headers,
    http_url,
    signing_secret,
)
from mh_webhook_cli.cli.ui import ui
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS
from mh_webhook_cli.errors import ExitCode, MhwError, UsageError
from mh_webhook_cli.report.console import Format, info

app = command_group()


class ExportFormat(str, Enum):
    JSONL = "jsonl"
    HAR = "har"


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
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            metavar="ID",
            help="Only the requests about this project (the id in the list's project column).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Show at most N.", min=1)] = 20,
    show_all: Annotated[bool, typer.Option("--all", help="No limit.")] = False,
    store: StoreOption = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """List captured requests, newest first."""
    from mh_webhook_cli.core.times import parse_time
    from mh_webhook_cli.receive.store import default_store_path, open_existing
    from mh_webhook_cli.report.events import show_list

    cutoff = None if since is None else parse_time(since, now=time.time(), what="--since")
    shown = None if show_all else limit
    opened = open_existing(store)
    if opened is None:
        missing = store.expanduser() if store is not None else default_store_path()
        show_list([], output_format, missing_store=missing)
        return
    with opened:
        show_list(
            opened.rows(
                event_glob=event_glob,
                since=cutoff,
                invalid_only=invalid,
                project=project,
                # One more than shown: whether there are more is worth a line to people.
                limit=None if shown is None else shown + 1,
            ),
            output_format,
            limit=shown,
        )


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
    from mh_webhook_cli.receive.store import stored_row
    from mh_webhook_cli.report.events import show_detail

    if raw and output_format is Format.JSON:
        raise UsageError("give --raw or --format json, not both")
    show_detail(stored_row(request_id, store), output_format, raw=raw)


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
    from mh_webhook_cli.receive.store import existing_path
    from mh_webhook_cli.report.events import export, export_store

    found = existing_path(store)
    if output is not None and found is not None and _is_part_of(output.expanduser(), found):
        # Opening it to write would empty the store before a row is read.
        raise UsageError(f"--output {output} is the capture store itself: write elsewhere")
    try:
        target = sys.stdout.buffer if output is None else output.expanduser().open("wb")
    except OSError as failure:
        raise UsageError(f"cannot write {output}: {failure.strerror}") from None
    har = export_format is ExportFormat.HAR
    try:
        count = (
            export((), target, har=har) if found is None else export_store(found, target, har=har)
        )
        target.flush()  # what is still buffered fails here, not silently at close
    except BrokenPipeError:
        raise  # stdout's reader went away: mhw stops quietly (see cli.main)
    except OSError as failure:  # a full disk, a device that takes nothing
        raise MhwError(f"cannot write {output or 'stdout'}: {failure.strerror}") from None
    finally:
        if output is not None:
            with contextlib.suppress(OSError):  # after a failed write, reported above
                target.close()
    if output is not None:
        info(f"Exported {count} request{'' if count == 1 else 's'} to {output}")


def _is_part_of(output: Path, store: Path) -> bool:
    """Whether ``output`` is the store's file, or its WAL or shared-memory file."""
    files = [store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")]
    return output.resolve() in {path.resolve() for path in files}


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
    from mh_webhook_cli.receive.store import stored_request
    from mh_webhook_cli.report.events import show_replay
    from mh_webhook_cli.send.delivery import (
        Delivery,
        Signer,
        make_client,
        send_once,
        tls_context,
    )
    from mh_webhook_cli.send.replay import replay_headers

    http_url(to, "--to")
    extra = extra_headers(header)
    found = stored_request(request_id, store)
    resign_with = signing_secret(secret) if resign else None
    headers = replay_headers(found.headers, found.body, resign_with, time.time())
    delivery = Delivery(to, found.body, found.event_type, [*headers, *extra])
    with make_client(tls_context(insecure=False, cacert=None)) as client:
        # Signed already, or sent with the signature captured: nothing more to sign.
        result = send_once(client, delivery, Signer(None), timeout)
    show_replay(result, output_format)
    if not result.ok():
        raise typer.Exit(ExitCode.FAILED)


@app.command("clear")
def clear_command(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    store: StoreOption = None,
) -> None:
    """Delete every captured request (asks first, unless --yes)."""
    from mh_webhook_cli.receive.store import open_existing

    opened = open_existing(store)
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
