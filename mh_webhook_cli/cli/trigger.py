"""Start a real Magic Hour job and check that its webhooks reach you, end to end."""

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mh_webhook_cli.cli.help_text import examples
from mh_webhook_cli.cli.listener_options import ListenerOptions, listener_options
from mh_webhook_cli.cli.options import ApiBaseOption, ApiKeyOption, FormatOption, magic_hour_api
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.report.console import Format

if TYPE_CHECKING:
    from mh_webhook_cli.magichour.trigger_session import AttachedListener


class JobKindChoice(str, Enum):
    image = "image"
    audio = "audio"
    video = "video"


DEFAULT_PROMPTS = {
    "image": "A small red cube on a white table, studio light",
    "audio": "Hello from mhw.",
    "video": "A paper boat drifting on a calm pond",
}
"""Short on purpose: an audio job costs a credit per ten characters."""


EXAMPLES = examples(
    "mhw trigger image",
    "mhw trigger audio --yes --tunnel --domain you.ngrok-free.app",
    "mhw trigger image --yes --api-base http://127.0.0.1:8788  # mhw emulate",
)


@listener_options
def trigger(
    kind: Annotated[
        JobKindChoice, typer.Argument(help="The cheapest job of this kind is created.")
    ],
    prompt: Annotated[
        str | None,
        typer.Option(
            help="Image or video prompt, or the words to speak (audio).", show_default=False
        ),
    ] = None,
    voice: Annotated[
        str | None, typer.Option(help="Voice for an audio job.", show_default=False)
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Spend the credits without asking.")
    ] = False,
    expect_error: Annotated[
        bool,
        typer.Option(help="Succeed when the job errors and its errored webhook arrives."),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds the job may take to finish.", min=1)
    ] = 300.0,
    webhook_timeout: Annotated[
        float,
        typer.Option(help="Seconds the final webhook may take once the job finished.", min=0.1),
    ] = 60.0,
    poll_interval: Annotated[
        float, typer.Option(help="Seconds between two looks at the job through the API.", min=0.05)
    ] = 2.0,
    download: Annotated[
        Path | None,
        typer.Option(help="Save the job's outputs in this directory.", show_default=False),
    ] = None,
    attach: Annotated[
        bool,
        typer.Option(
            help="Use the store of an 'mhw listen' already running instead of a listener "
            "of our own.",
        ),
    ] = False,
    *,
    listener: ListenerOptions,
    api_key: ApiKeyOption = None,
    api_base: ApiBaseOption = None,
    output_format: FormatOption = Format.TEXT,
) -> None:
    """Start a real Magic Hour job and check that its webhooks reach you, end to end.

    Exit codes: 0 the final webhook arrived, signed and consistent with the API; 1 it
    disagrees with the API (or --expect-error saw success); 2 usage; 3 API error; 4 the job
    failed; 5 the job finished but no webhook arrived; 6 the webhook's signature is wrong;
    7 the job did not finish within --timeout.
    """
    from mh_webhook_cli.magichour.trigger import TriggerPlan
    from mh_webhook_cli.magichour.trigger_session import OwnListener, run_session

    secrets = listener.secrets(required=True)
    if download is not None and not download.is_dir():
        raise UsageError(f"--download: no directory {download}")
    if attach and (listener.tunnel or listener.domain):
        raise UsageError("--attach uses the running listener's URL: drop --tunnel/--domain")
    if not yes and not sys.stdin.isatty():
        raise UsageError("this spends Magic Hour credits: pass --yes when there is no one to ask")
    text = prompt if prompt is not None else DEFAULT_PROMPTS[kind.value]
    if not text.strip():
        raise UsageError("--prompt is empty")
    api = magic_hour_api(api_key, api_base)
    plan = TriggerPlan(
        kind=kind.value,
        text=text,
        secrets=secrets,
        voice=voice,
        expect_error=expect_error,
        timeout=timeout,
        webhook_timeout=webhook_timeout,
        poll_interval=poll_interval,
    )
    where: OwnListener | AttachedListener
    if attach:
        where = _running_listener(listener.store)
    else:
        where = OwnListener(
            listener.host, listener.port, listener.store_path(), listener.tunnel_request()
        )
    from mh_webhook_cli.event_loop import run_loop
    from mh_webhook_cli.report.listen import ListenTextReporter
    from mh_webhook_cli.report.trigger import trigger_reporter

    session = run_session(
        api,
        plan,
        listener=where,
        confirm=None if yes else _ask_to_start,
        download_to=download,
        reporter=trigger_reporter(output_format),
        # Our own listener's banner and warnings, on stderr; the requests are the timeline's.
        listener_reporter=ListenTextReporter(requests=False),
    )
    raise typer.Exit(run_loop(session))


async def _ask_to_start() -> bool:
    """Ask on the terminal whether to spend the credits; yes only for y or yes.

    The answer is read on the event loop, not in a thread: a thread blocked in input()
    would keep Ctrl-C from ending the run (and exit would wait for a line).
    """
    import asyncio
    import os

    sys.stderr.write("Start it? [y/N]: ")
    sys.stderr.flush()
    loop = asyncio.get_running_loop()
    line = loop.create_future()
    fd = sys.stdin.fileno()
    typed = bytearray()

    def readable() -> None:
        chunk = os.read(fd, 1024)
        typed.extend(chunk)
        if (not chunk or b"\n" in chunk) and not line.done():
            line.set_result(bytes(typed))

    loop.add_reader(fd, readable)
    try:
        answer = await line
    except asyncio.CancelledError:  # Ctrl-C: what follows goes below the terminal's ^C
        sys.stderr.write("\n")
        raise
    finally:
        loop.remove_reader(fd)
    return answer.split(b"\n")[0].strip().lower() in (b"y", b"yes")


def _running_listener(flag: Path | None) -> "AttachedListener":
    """The running listener to follow: the one whose store is ``--store``, else the only one
    ``mhw listen`` announced."""
    from mh_webhook_cli.magichour.trigger_session import AttachedListener
    from mh_webhook_cli.receive.registry import running_listeners

    announced = {Path(entry.store): entry for entry in running_listeners() if entry.store}
    if flag is not None:
        if not flag.exists():
            raise UsageError(f"--store {flag}: no such capture store")
        wanted = flag.resolve()
        found = next(
            (entry for store, entry in announced.items() if store.resolve() == wanted), None
        )
        return AttachedListener(flag, found.webhook_url if found else None)
    if not announced:
        raise UsageError(
            "--attach: no running 'mhw listen' with a store found; start one, or pass --store"
        )
    if len(announced) > 1:
        stores = sorted(str(store) for store in announced)
        raise UsageError(f"--attach: several listeners are running; pick a --store of {stores}")
    ((store, entry),) = announced.items()
    return AttachedListener(store, entry.webhook_url)
