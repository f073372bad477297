"""Shared test helpers: run the real ``mhw`` in a subprocess with an isolated home."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SECRET = "mhw_live_0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


Mhw = Callable[..., Result]


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no mhw or Magic Hour settings from the developer's machine."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MAGIC_HOUR_", "MHW_", "NGROK_", "FORCE_COLOR", "NO_COLOR"))
    }
    home = tmp_path / "home"
    home.mkdir()
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),  # the capture store's directory
        MHW_CONFIG=str(tmp_path / "mhw" / "config.json"),
        COLUMNS="200",
        TERM="dumb",
    )
    return env


@pytest.fixture
def mhw(isolated_env: dict[str, str], tmp_path: Path) -> Mhw:
    """Run ``python -m mh_webhook_cli ARGS`` the way a user runs ``mhw``."""

    def run(
        *args: str, input: bytes | str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        data = input.encode() if isinstance(input, str) else input
        completed = subprocess.run(
            [sys.executable, "-m", "mh_webhook_cli", *args],
            input=data if data is not None else b"",
            capture_output=True,
            env={**isolated_env, **(env or {})},
            cwd=tmp_path,
            timeout=30,
            check=False,
        )
        return Result(
            completed.returncode,
            completed.stdout.decode("utf-8", errors="replace"),
            completed.stderr.decode("utf-8", errors="replace"),
        )

    return run


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy (its value is returned): tests never sleep blindly."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
