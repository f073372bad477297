"""What ``mhw`` imports before it answers: a help imports no more than a help needs.

Timings are for ``bench/startup.py`` (a shared machine is too noisy to assert them); what can
be asserted is what is imported, through Python's own import log (``-X importtime``).
"""

from __future__ import annotations

import pytest

from conftest import Mhw


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
