"""What ``mhw`` imports before it answers: a help imports no more than a help needs.

Timings are for ``bench/startup.py`` (a shared machine is too noisy to assert them); what can
be asserted is what is imported, through Python's own import log (``-X importtime``).
"""

from __future__ import annotations

import gc
import subprocess
import sys
from typing import Any

import pytest

from conftest import Mhw
from mh_webhook_cli.cli import GROUPS, build_app
from mh_webhook_cli.cli.help_text import command_of


def imported(stderr: str) -> set[str]:
    """The modules ``PYTHONPROFILEIMPORTTIME`` logged: ``import time: self | cumulative | name``."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize(
    "words",
    [("listen",), ("send",), ("verify",), ("events",), ("events", "list"), ("config", "set")],
)
def test_a_help_imports_no_pydantic(mhw: Mhw, words: tuple[str, ...]) -> None:
    # Typer coerced the unset --help and completion flags (None) through pydantic: 20-40 ms.
    result = mhw(*words, "--help", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.code == 0, result.stderr[-500:]
    assert "Usage: mhw" in result.stdout
    modules = imported(result.stderr)
    assert "typer" in modules  # the log is there
    assert "pydantic" not in modules


def test_the_completion_flags_still_work(mhw: Mhw) -> None:
    # Typer's switch to take the shell named, not the one it detects among the test's parent
    # processes (there may be none it knows: "Shell  not supported").
    switch = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    result = mhw("--show-completion", "bash", env=switch)
    assert result.code == 0
    assert "_MHW_COMPLETE" in result.stdout


# Whether the collector is on once mhw has shown a help, as python -m runs it.
COLLECTOR_AFTER_HELP = """
import gc, runpy, sys
sys.argv = ["mhw", *sys.argv[1:]]
try:
    runpy.run_module("mh_webhook_cli", run_name="__main__")
finally:
    print("collector on:", gc.isenabled(), file=sys.stderr)
"""


@pytest.mark.parametrize("words", [("--help",), ("listen", "--help"), ("events", "list", "--help")])
def test_mhw_starts_with_the_garbage_collector_off(
    isolated_env: dict[str, str], words: tuple[str, ...]
) -> None:
    # Its passes over what start-up makes (nearly none of it garbage) cost 7-9 ms of a start;
    # a help ends before any command starts, so it stays off.
    result = subprocess.run(
        [sys.executable, "-c", COLLECTOR_AFTER_HELP, *words],
        capture_output=True,
        text=True,
        env=isolated_env,
        timeout=30,
        check=False,
    )
    assert "Usage: mhw" in result.stdout, result.stderr[-500:]
    assert result.stderr.splitlines()[-1] == "collector on: False"


@pytest.mark.parametrize("words", [["fixtures", "list", "--format", "json"], ["config", "path"]])
def test_a_command_turns_the_garbage_collector_on_as_it_starts(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # A command may run for hours (mhw listen) or make many objects (mhw send --load).
    command = command_of(build_app(*words[:2]))
    gc.disable()
    try:
        command.main(words, prog_name="mhw", standalone_mode=False)
        assert gc.isenabled()
    finally:
        gc.enable()
        gc.unfreeze()  # what the command froze: this process's objects, collectable again
    assert capsys.readouterr().out


@pytest.mark.parametrize("group", list(GROUPS))
def test_a_group_builds_only_the_subcommand_that_runs(group: str) -> None:
    # Typer makes click options of every built command's signature on each run.
    everything = command_of(build_app(everything=True)).commands[group].commands
    runs = max(everything, key=lambda name: len(everything[name].params))
    listed = [name for name in everything if name != runs]
    built = command_of(build_app(group, runs)).commands[group].commands
    assert list(built) == list(everything)

    def names(command: Any) -> list[str]:
        return [param.name for param in command.params]

    assert names(built[runs]) == names(everything[runs]) != []
    for name in listed:
        # Listed: no options of its own, and the same summary in 'mhw GROUP --help'.
        assert names(built[name]) == []
        assert built[name].help == everything[name].help
