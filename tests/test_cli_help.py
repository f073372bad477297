"""Every ``mhw … --help`` reads at 80 columns: nothing cut, placeholders for values only,
one usage style, and a few examples to start from."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from rich.cells import cell_len

from mh_webhook_cli.cli import build_app
from mh_webhook_cli.cli.help_text import command_of


def _command_paths() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [()]

    def walk(command: object, path: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append((*path, name))
            walk(sub, (*path, name))

    walk(command_of(build_app(everything=True)), ())
    return paths


COMMANDS = _command_paths()
OWNED_ELSEWHERE = {("events", name) for name in ("list", "show", "export", "replay", "clear", "ui")}
"""cli/events.py's commands get their examples with that module's next change."""


def help_at(columns: int, path: tuple[str, ...], isolated_env: dict[str, str]) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "mh_webhook_cli", *path, "--help"],
        capture_output=True,
        env={**isolated_env, "COLUMNS": str(columns), "TERM": "xterm-256color"},
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.decode()


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "mhw")
def test_help_fits_80_columns_with_nothing_cut(
    path: tuple[str, ...], isolated_env: dict[str, str]
) -> None:
    text = help_at(80, path, isolated_env)
    for line in text.splitlines():
        assert cell_len(line) <= 80, line
    # Rich marks a word it had to cut with an ellipsis: no help text holds one of its own.
    assert "…" not in text, text
    # Typer's type labels beside an option: a flag takes no value, --secret is not a
    # list[str]. (An argument's row keeps its type, <str>, or its choices.)
    options = [line for line in text.splitlines() if re.match(r"│ +(\* +)?--?\w", line)]
    assert not re.search(r"<\w", "\n".join(options)), text


@pytest.mark.parametrize(
    "path",
    [p for p in COMMANDS if (p and p[0] not in ("events", "fixtures", "config")) or len(p) == 2],
)
def test_usage_line_names_arguments_in_capitals(
    path: tuple[str, ...], isolated_env: dict[str, str]
) -> None:
    usage = next(line for line in help_at(80, path, isolated_env).splitlines() if "Usage:" in line)
    assert not re.search(r"[\[{][a-z]", usage), usage


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in COMMANDS
        if p and p not in OWNED_ELSEWHERE and p not in (("events",), ("fixtures",), ("config",))
    ],
    ids=" ".join,
)
def test_every_command_shows_examples(path: tuple[str, ...], isolated_env: dict[str, str]) -> None:
    text = help_at(80, path, isolated_env)
    assert "Examples:" in text
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith("$ mhw ")]
    assert examples and all(
        line.startswith(f"$ mhw {' '.join(path)}") or "|" in line for line in examples
    ), examples


def test_listen_groups_its_options_in_panels(isolated_env: dict[str, str]) -> None:
    text = help_at(80, ("listen",), isolated_env)
    for panel in (
        "Listener",
        "Tunnel (ngrok)",
        "Answering",
        "Forwarding",
        "Limits",
        "For CI",
        "Output",
    ):
        assert f"╭─ {panel} " in text
    assert "--no-reject-invalid" not in text and "--no-mirror-status" not in text
    assert "2xx" in text  # --respond-body answers 2xx only


@pytest.mark.parametrize("command", ["send", "sign", "emulate", "check", "events replay"])
def test_signing_commands_take_one_secret(command: str, isolated_env: dict[str, str]) -> None:
    """They sign with one secret: their help does not promise to accept several."""
    text = help_at(200, tuple(command.split()), isolated_env)
    assert "Webhook secret to sign with" in text and "Repeat" not in text


@pytest.mark.parametrize("command", ["listen", "verify", "trigger", "doctor"])
def test_verifying_commands_accept_several_secrets(
    command: str, isolated_env: dict[str, str]
) -> None:
    assert "Repeat to accept several while rotating" in help_at(200, (command,), isolated_env)


def test_trigger_help_lists_its_exit_codes(isolated_env: dict[str, str]) -> None:
    """The root help sends readers there for codes 4-7."""
    text = " ".join(help_at(80, ("trigger",), isolated_env).split())
    assert "5 the job finished but no webhook arrived" in text
