"""What the CLI says about its bounds: the help of each deadline, and defaults that are the
library's own numbers."""

from __future__ import annotations

import re

import pytest

from conftest import Mhw
from mh_webhook_cli.core.limits import MAGIC_HOUR_TIMEOUT_SECONDS

WHOLE_EXCHANGE = "connecting, sending, and the handler's complete answer"


def option_help(mhw: Mhw, command: list[str], option: str) -> str:
    """The help line of ``option``, its box drawing and wrapping taken out."""
    result = mhw(*command, "--help", env={"COLUMNS": "400"})
    assert result.code == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if f" {option} " in line]
    return re.sub(r"\s+", " ", line.strip("│ "))


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["listen"], "--forward-timeout"),
        (["send"], "--timeout"),
        (["events", "replay"], "--timeout"),
    ],
)
def test_a_deadline_says_it_covers_the_whole_exchange(
    mhw: Mhw, command: list[str], option: str
) -> None:
    """Each is one deadline for connecting, sending and reading the complete answer (see
    send/client.py); main's help said "to wait for an answer", which a trickled answer outlasts."""
    text = option_help(mhw, command, option)
    assert WHOLE_EXCHANGE in text, text
    assert f"[default: {MAGIC_HOUR_TIMEOUT_SECONDS}]" in text, text
