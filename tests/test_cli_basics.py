"""The command line as a whole: help, version, errors and completion scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Mhw
from mh_webhook_cli import __version__

COMPLETIONS = Path(__file__).parent.parent / "completions"
SHELLS = {"bash": "mhw.bash", "zsh": "_mhw", "fish": "mhw.fish", "powershell": "mhw.ps1"}


def test_version(mhw: Mhw) -> None:
    result = mhw("--version")
    assert (result.code, result.stdout.strip()) == (0, f"mhw {__version__}")


def test_help_lists_every_command_with_a_description(mhw: Mhw) -> None:
    result = mhw("--help")
    assert result.code == 0
    for command in ("listen", "send", "verify", "sign", "events", "fixtures", "config"):
        line = next(line for line in result.stdout.splitlines() if f" {command} " in line)
        assert len(line.split(command, 1)[1].strip(" │")) > 10


def test_no_arguments_shows_help(mhw: Mhw) -> None:
    result = mhw()
    assert result.code == 0 and "verify" in result.stdout


@pytest.mark.parametrize("group", ["config", "events", "fixtures"])
def test_a_group_without_subcommand_shows_its_help(mhw: Mhw, group: str) -> None:
    result = mhw(group)
    assert result.code == 0
    assert f"mhw {group} [OPTIONS] COMMAND" in result.stdout


def test_unknown_command_is_one_line_exit_2(mhw: Mhw) -> None:
    result = mhw("frobnicate")
    assert result.code == 2
    assert result.stderr.strip().startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "mhw"
    if not script.exists():
        pytest.skip("mhw is not installed as a console script in this environment")
    completed = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == f"mhw {__version__}"


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_committed_completion_scripts_are_current(shell: str, isolated_env: dict[str, str]) -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "mh_webhook_cli"],
        env={**isolated_env, "_MHW_COMPLETE": f"source_{shell}"},
        capture_output=True,
        check=True,
    ).stdout
    committed = COMPLETIONS / SHELLS[shell]
    assert generated, f"no completion script generated for {shell}"
    if shell == "zsh":  # compinit reads a file only when this is its first line
        assert generated.startswith(b"#compdef mhw\n")
    assert committed.read_bytes() == generated, (
        f"{committed} is stale: regenerate with "
        f"_MHW_COMPLETE=source_{shell} mhw > completions/{SHELLS[shell]}"
    )


@pytest.mark.parametrize(
    ("words", "index", "expected"),
    [
        ("mhw ve", 1, "verify"),
        ("mhw listen --forw", 2, "--forward-to"),
        ("mhw events re", 2, "replay"),
    ],
)
def test_completion_knows_every_command_and_option(
    isolated_env: dict[str, str], words: str, index: int, expected: str
) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "mh_webhook_cli"],
        env={
            **isolated_env,
            "_MHW_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(index),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert expected in completed.stdout.split()


def test_install_completion_writes_a_zsh_file_compinit_reads(
    isolated_env: dict[str, str],
) -> None:
    subprocess.run(
        [sys.executable, "-m", "mh_webhook_cli", "--install-completion", "zsh"],
        # Typer's switch to take the shell named rather than the one running the tests.
        env={**isolated_env, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
        capture_output=True,
        check=True,
    )
    installed = Path(isolated_env["HOME"]) / ".zfunc" / "_mhw"
    assert installed.read_text().startswith("#compdef mhw\n")


def _complete(shell: str, line: str, isolated_env: dict[str, str]) -> str:
    """What ``line<TAB>`` offers in ``shell``, as its completion script asks mhw."""
    words = line.split()
    variables = {
        "bash": {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - (not line.endswith(" ")))},
        "zsh": {"_TYPER_COMPLETE_ARGS": line},
        "fish": {"_TYPER_COMPLETE_ARGS": line, "_TYPER_COMPLETE_FISH_ACTION": "get-args"},
    }[shell]
    return subprocess.run(
        [sys.executable, "-m", "mh_webhook_cli"],
        env={**isolated_env, "_MHW_COMPLETE": f"complete_{shell}", **variables},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize("command", ["send", "fixtures show"])
def test_event_names_complete_where_an_event_is_expected(
    isolated_env: dict[str, str], shell: str, command: str
) -> None:
    everything = _complete(shell, f"mhw {command} ", isolated_env)
    assert "video.completed" in everything and "audio.errored" in everything
    some = _complete(shell, f"mhw {command} ima", isolated_env)
    assert "image.completed" in some and "video.completed" not in some


def test_exit_codes_follow_the_error_tree() -> None:
    """Declared once, in errors.py: usage 2, runtime failures 1 (a store the disk cannot
    give back is one: the command line was right), the Magic Hour API 3."""
    from mh_webhook_cli import errors

    codes = {
        error: error.exit_code
        for error in (
            errors.MhwError,
            errors.UsageError,
            errors.InvalidValue,
            errors.CaptureError,
            errors.OverrideError,
            errors.StoreError,
            errors.StoreClosed,
            errors.TunnelError,
            errors.ApiError,
            errors.Cancelled,
        )
    }
    assert codes == {
        errors.MhwError: 1,
        errors.UsageError: 2,
        errors.InvalidValue: 2,
        errors.CaptureError: 2,
        errors.OverrideError: 2,
        errors.StoreError: 1,
        errors.StoreClosed: 1,
        errors.TunnelError: 1,
        errors.ApiError: 3,
        errors.Cancelled: 130,
    }
    assert issubclass(errors.InvalidValue, ValueError)  # what a library caller catches
