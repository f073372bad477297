"""The ``mhw`` command line: one small module per command, registered here.

Commands only turn options into calls to the library and hand its results to a
reporter (``mh_webhook_cli.report``); what they do lives in the library. The library
raises the errors of :mod:`mh_webhook_cli.errors`, and :func:`main` is the one place
that turns an error into a line on stderr and its exit code.

A command's module is imported only when that command runs: Typer turns
every imported command's signature into click options on each run, which
for all of mhw's commands costs more than the rest of a ``mhw verify``
(``bench/startup.py`` measures it). In a group, only the subcommand that runs is
turned into one: ``mhw events list`` does not pay for the options of ``events replay``.

``mhw`` starts with the cyclic garbage collector off (:mod:`mh_webhook_cli.__main__`);
each command turns it on again as it starts its work.
"""

import copy
import functools
import gc
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Annotated, ParamSpec, TypeVar

import typer
import typer.completion

from mh_webhook_cli import __version__
from mh_webhook_cli.cli.completion import fix_zsh_script
from mh_webhook_cli.cli.help_text import command_of, examples
from mh_webhook_cli.cli.options import HELP_OPTIONS, command_group, show_help_when_bare
from mh_webhook_cli.cli.usage_errors import usage_message
from mh_webhook_cli.errors import ExitCode, MhwError
from mh_webhook_cli.report.console import error

COMMANDS: dict[str, str] = {
    "listen": "Receive webhooks locally: show each one live, verify it, store it, forward it.",
    "send": "Send signed events to a webhook handler, as Magic Hour would, and report what it "
    "answered.",
    "check": "Grade a webhook handler against Magic Hour's rules: forged, stale, unsigned, "
    "retried, late.",
    "verify": "Check a request's signature and explain why it fails.",
    "sign": "Sign a body as Magic Hour would: print the two headers, or a ready curl command.",
    "trigger": "Start a real Magic Hour job and check that its webhooks reach you, end to end.",
    "emulate": "Run a local Magic Hour API that delivers signed webhooks, with real retries.",
    "doctor": "Check the API key, webhook secret, ngrok token and running listeners.",
}
"""Commands in the order ``mhw --help`` lists them, with their summaries."""
GROUPS: dict[str, str] = {
    "events": "Inspect, replay, export and clear the requests captured by 'mhw listen'.",
    "fixtures": "Example events for all nine Magic Hour webhooks, and a schema check for yours.",
    "config": "Show and change settings (webhook secret, API key, ngrok token).",
}
"""Command groups (``mhw config set …``), listed after the commands."""
EXAMPLES = examples(
    "mhw listen",
    "mhw send video.completed --url http://127.0.0.1:8787/",
    "mhw check http://127.0.0.1:8000/webhook",
)


def _unset_flags() -> dict[str, bool]:
    """Typer's own flags of the root (help, completion), as the values they have when not given.

    Unset, they are None, and Typer (0.29) coerces every value that is not a bool through a
    pydantic TypeAdapter: importing pydantic for it cost every ``mhw X --help`` 20-40 ms
    before the help was shown (a bare one-command app's ``--help`` exits first). Click's
    ``default_map`` (documented; nested by subcommand name) gives them False, a bool, which
    Typer takes as it is. Only the flags Typer declares as bool: with its test switch for
    shell detection, the completion flags take a shell's name, and False would be refused.
    ``bench/startup.py`` measures it; tests/test_cli_basics.py checks that help imports no
    pydantic.
    """
    completion = typer.completion.get_completion_inspect_parameters()
    return {"help": False} | {flag.name: False for flag in completion if flag.annotation is bool}


def _print_version(value: bool) -> None:
    if value:
        print(f"mhw {__version__}")
        raise typer.Exit()


def _root(
    context: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print mhw's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Sign, send, receive and verify Magic Hour webhooks.

    Exit codes: 0 success, 1 a check failed, 2 bad input or usage, 3 Magic Hour API error,
    4-7 see 'mhw trigger --help', 141 the reader of stdout went away (as for any filter).
    """
    show_help_when_bare(context)


def build_app(
    command: str | None = None, subcommand: str | None = None, *, everything: bool = False
) -> typer.Typer:
    """The ``mhw`` app: with ``command`` (or ``everything``) real, the others only listed.

    A listed command has its name and summary but no options, which is all
    ``mhw --help`` shows and costs nothing to import. In a group, ``subcommand`` is
    the one that is real.
    """
    app = typer.Typer(
        name="mhw",
        # Locals in a traceback could show a webhook secret or an API key.
        pretty_exceptions_show_locals=False,
        context_settings={
            **HELP_OPTIONS,
            "default_map": _unset_flags() | {group: {"help": False} for group in GROUPS},
        },
    )
    app.callback(invoke_without_command=True, epilog=EXAMPLES)(_root)
    for name, summary in COMMANDS.items():
        real = everything or name == command
        module = _module(name) if real else None
        # A command run gets its docstring as help (its exit codes, say); listed, its summary.
        app.command(
            name, help=None if module else summary, epilog=getattr(module, "EXAMPLES", None)
        )(_collecting(module.__dict__[name]) if module else _listed_only)
    for name, summary in GROUPS.items():
        real = everything or name == command
        group = _group(_module(name).app, None if everything else subcommand) if real else None
        app.add_typer(group or command_group(), name=name, help=summary)
    return app


def _group(group: typer.Typer, subcommand: str | None) -> typer.Typer:
    """A copy of ``group`` with ``subcommand`` real (all of them when None), the others listed.

    Listed, a subcommand keeps its name and help, all that ``mhw events --help`` shows.
    """
    copied = copy.copy(group)
    copied.registered_commands = []
    for info in group.registered_commands:
        assert info.callback is not None, "typer commands always have a callback"
        name = info.name or typer.main.get_command_name(info.callback.__name__)
        listed = copy.copy(info)
        listed.name = name
        if subcommand is None or name == subcommand:
            listed.callback = _collecting(info.callback)
        else:
            listed.callback = _listed_only
            listed.help = inspect.getdoc(info.callback) if info.help is None else info.help
        copied.registered_commands.append(listed)
    return copied


P = ParamSpec("P")
R = TypeVar("R")


def _collecting(command: Callable[P, R]) -> Callable[P, R]:
    """``command``, turning the garbage collector back on as it starts.

    ``mhw`` starts with it off (see :mod:`mh_webhook_cli.__main__`); a command that runs
    for hours (``mhw listen``) or makes many objects (``mhw send --count``) needs it. What
    start-up made is frozen first, out of the collector's sight, as it lives as long as the
    process: the first passes, and the one at exit, would otherwise go over all of it again.
    """

    @functools.wraps(command)
    def collecting(*args: P.args, **kwargs: P.kwargs) -> R:
        if not gc.isenabled():
            gc.freeze()
            gc.enable()
        return command(*args, **kwargs)

    return collecting


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"mh_webhook_cli.cli.{name}")


def _listed_only() -> None:
    """Stands in for a command in the root help, which never runs it."""


def _command_in(args: list[str]) -> str | None:
    """The command a command line runs: its first word that is not an option."""
    return next((arg for arg in args if not arg.startswith("-")), None)


def main() -> None:
    """Run ``mhw``: every user error becomes one line on stderr and a documented exit code.

    The codes: typer's usage errors its own (2), an :class:`MhwError` its ``exit_code``
    (declared once, in :mod:`mh_webhook_cli.errors`: usage 2, runtime failures 1, the
    Magic Hour API 3), a reader that left 141. ``mhw trigger``'s verdicts (4-7) and a
    failed check (1) are the commands' own ``typer.Exit``.
    """
    _fill_closed_standard_streams()
    stdout = sys.stdout
    try:
        # Shell completion looks at every command's options, so it gets them all.
        completing = "_MHW_COMPLETE" in os.environ
        words = sys.argv[1:]
        command = _command_in(words)
        subcommand = _command_in(words[words.index(command) + 1 :]) if command else None
        app = build_app(command, subcommand, everything=completing)
        click_command = command_of(app)
        if completing or any(arg.endswith("-completion") for arg in sys.argv[1:]):
            fix_zsh_script()
        code = click_command.main(prog_name="mhw", standalone_mode=False)
        sys.stdout.flush()  # here, where a reader that left is handled, not at exit
    except typer.TyperException as failure:
        # Typer's usage errors carry the context of the command that failed.
        context = getattr(failure, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        error(usage_message(failure) + hint)
        code = failure.exit_code
    except typer.Abort as failure:
        # Click turns a Ctrl-C inside a command (at a prompt, say) into Abort.
        if isinstance(failure.__cause__, KeyboardInterrupt):
            code = ExitCode.INTERRUPTED
        else:
            error("aborted")
            code = ExitCode.FAILED
    except MhwError as failure:
        error(str(failure))
        code = failure.exit_code
    except BrokenPipeError:
        code = ExitCode.BROKEN_PIPE
    except SystemExit:
        if sys.stdout is stdout:
            raise
        # Click met the broken pipe first: it swapped sys.stdout for a wrapper that hides
        # the failed flush, and exits 1, which says "a check failed". The same 141 instead.
        code = ExitCode.BROKEN_PIPE
    if code == ExitCode.BROKEN_PIPE:
        _quiet_after_broken_pipe()
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _fill_closed_standard_streams() -> None:
    """Put /dev/null where a standard stream was closed at start (``mhw listen >&-``).

    Otherwise the next file or socket opened takes the free number: a listener's first
    connection would become fd 1, and what mhw prints would go to that stranger.
    """
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:  # Python's sign that the descriptor was not open
            # It takes the lowest free number, which is this stream's: in order, the lower
            # ones are open or were filled.
            opened = os.open(os.devnull, os.O_RDONLY if mode == "r" else os.O_WRONLY)
            setattr(sys, name, os.fdopen(opened, mode, encoding="utf-8"))


def _quiet_after_broken_pipe() -> None:
    """stdout's reader left (``mhw events list | head -1``): end quietly, as a Unix filter.

    Python ignores SIGPIPE, so the write raised instead of ending the process; the exit
    status is the 141 a shell reports for a filter that SIGPIPE ended (``yes | head -1``), so
    that ``set -o pipefail`` treats mhw as it treats them. What is still buffered for stdout
    would raise again when Python flushes it at exit: stdout goes to devnull instead, as the
    Python docs advise (see "Note on SIGPIPE" in the signal module).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
