"""mhw's config file, and the official Magic Hour CLI's, on disk.

mhw keeps its settings as JSON in the user config directory (platformdirs:
``~/.config/mhw/config.json`` on Linux), or wherever ``MHW_CONFIG`` points.
The file can hold secrets, so it is always written with mode 0600, atomically,
in a directory only its owner can list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mh_webhook_cli.core.settings import Resolved, Setting, resolve
from mh_webhook_cli.errors import UsageError
from mh_webhook_cli.files import read_file, write_private

CONFIG_ENV = "MHW_CONFIG"
MAGIC_HOUR_CLI_CONFIG_ENV = "MAGIC_HOUR_CONFIG"
MAX_CONFIG_BYTES = 1024 * 1024
"""A config holds a few short strings; a larger file is not one."""


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where mhw's config file lives (it may not exist yet)."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    from platformdirs import user_config_path

    return user_config_path("mhw", appauthor=False) / "config.json"


def magic_hour_cli_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the official Magic Hour CLI keeps its API key."""
    env = os.environ if env is None else env
    if env.get(MAGIC_HOUR_CLI_CONFIG_ENV):
        return Path(env[MAGIC_HOUR_CLI_CONFIG_ENV]).expanduser()
    return Path.home() / ".config" / "magic-hour" / "config.json"


def read_json_object(path: Path, *, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; empty when the file does not exist."""
    try:
        # MHW_CONFIG may name /dev/zero or a FIFO: refused by type, not waited on or read.
        raw = read_file(path, f"{what} {path}", MAX_CONFIG_BYTES, regular_only=True)
    except FileNotFoundError:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not UTF-8 text; fix or delete it") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise UsageError(f"{what} {path} is not valid JSON ({reason}); fix or delete it") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what} {path} must hold a JSON object")
    for key, value in data.items():
        if not isinstance(value, str):
            raise UsageError(f"{what} {path}: {key} must be a string, not {value!r}")
    return data


def load_config(path: Path | None = None) -> dict[str, Any]:
    return read_json_object(path or config_path(), what="config file")


def save_config(data: Mapping[str, Any], path: Path | None = None) -> Path:
    """Write the config atomically with mode 0600 (it may hold secrets)."""
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, json.dumps(dict(data), indent=2, sort_keys=True) + "\n")
    return path


def magic_hour_cli_config() -> dict[str, Any]:
    """The official Magic Hour CLI's settings; empty when missing or unreadable.

    That file is not ours: a broken one must not stop mhw, it only means the
    API key has to come from elsewhere.
    """
    try:
        return read_json_object(magic_hour_cli_config_path(), what="Magic Hour CLI config")
    except UsageError:
        return {}


def effective(setting: Setting, flag: str | None = None) -> Resolved:
    """The value a command should use for ``setting``, read from flag, env and files."""
    return resolve(
        setting,
        flag=flag,
        env=os.environ,
        config=load_config(),
        magic_hour_cli=magic_hour_cli_config() if setting.from_magic_hour_cli else None,
    )
