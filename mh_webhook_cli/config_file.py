"""mhw's config file, and the official Magic Hour CLI's, on disk.

mhw keeps its settings as JSON in the user config directory (platformdirs:
``~/.config/mhw/config.json`` on Linux), or wherever ``MHW_CONFIG`` points.
The file can hold secrets, so it is always written with mode 0600, atomically,
in a directory only its owner can list.

It also answers "which value does a command use?" for every setting (:func:`effective`:
flag > env > this file, by :mod:`mh_webhook_cli.core.settings`'s rule), and cleans what it
finds by one rule wherever it came from. A value trimmed of whitespace is used with a
warning, which goes to the ``warn`` callback the caller passes (this layer prints nothing).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mh_webhook_cli.core.settings import (
    API_BASE,
    API_KEY,
    WEBHOOK_SECRET,
    Resolved,
    Setting,
    Source,
    clean_value,
    resolve,
)
from mh_webhook_cli.errors import InvalidValue, UsageError
from mh_webhook_cli.files import read_file, write_private

CONFIG_ENV = "MHW_CONFIG"
MAGIC_HOUR_CLI_CONFIG_ENV = "MAGIC_HOUR_CONFIG"
MAX_CONFIG_BYTES = 1024 * 1024
"""A config holds a few short strings; a larger file is not one."""

Warn = Callable[[str], None]
"""Where a warning about a value goes (the CLI shows it on stderr)."""


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


def origin(resolved: Resolved) -> str:
    """Where a setting's value came from, in the words that change it."""
    setting = resolved.setting
    return {
        Source.FLAG: setting.flag,
        Source.ENV: setting.env,
        Source.CONFIG: f"mhw config ({config_path()})",
        Source.MAGIC_HOUR_CLI: f"the Magic Hour CLI's config ({magic_hour_cli_config_path()})",
    }.get(resolved.source, "nowhere")


def usable(value: str, what: str, warn: Warn) -> str:
    """``value`` by :func:`~mh_webhook_cli.core.settings.clean_value`'s rule: an
    :class:`~mh_webhook_cli.errors.InvalidValue` naming ``what`` (the setting and where it
    came from), or the value trimmed, with a warning to ``warn``."""
    cleaned, warning = clean_value(value, what)
    if warning:
        warn(warning)
    return cleaned


def webhook_secrets(flags: Sequence[str] | None, *, warn: Warn, required: bool = True) -> list[str]:
    """The secrets to sign or verify with, by flag > env > config, each made usable.

    Every command that signs or verifies gets its secrets here, so one rule holds for all.
    None found is a usage error when ``required``, else an empty list.
    """
    if flags:
        return [
            usable(value, f"webhook secret from {WEBHOOK_SECRET.flag}", warn) for value in flags
        ]
    resolved = effective(WEBHOOK_SECRET)
    if resolved.value is None:
        if not required:
            return []
        raise UsageError(
            "no webhook secret: pass --secret, set MAGIC_HOUR_WEBHOOK_SECRET, "
            "or run 'mhw config set webhook_secret'"
        )
    return [usable(resolved.value, f"webhook secret from {origin(resolved)}", warn)]


def api_key(flag: str | None, *, warn: Warn) -> Resolved:
    """The API key by flag > env > mhw config > Magic Hour CLI config, and where it came from.

    Unset is not an error here (``mhw doctor`` reports it); an empty ``--api-key`` is.
    """
    if flag is not None and not flag.strip():
        raise UsageError("--api-key is empty")
    resolved = effective(API_KEY, flag)
    if resolved.value is None:
        return resolved
    # Sent in a header: bytes that are not UTF-8 would end in an encoding traceback there.
    key = usable(resolved.value, f"API key from {origin(resolved)}", warn)
    return Resolved(API_KEY, key, resolved.source)


def api_base(flag: str | None) -> str | None:
    """The API base URL by flag > env > config; None when unset (Magic Hour's own then)."""
    from mh_webhook_cli.core.hosts import http_url

    resolved = effective(API_BASE, flag)
    if resolved.value is None:
        return None
    named = {Source.FLAG: "--api-base", Source.ENV: API_BASE.env}
    return http_url(resolved.value, named.get(resolved.source, "config api_base"))


def set_value(setting: Setting, value: str, *, warn: Warn) -> tuple[str, Path]:
    """Save ``setting`` = ``value`` in the config file (by the rule every command applies
    when it reads it back): the value saved and the file's path. A refused value saves
    nothing."""
    if not value.strip():
        raise UsageError(f"empty value for {setting.key}; use 'mhw config unset {setting.key}'")
    try:
        value = usable(value, f"value given for {setting.key}", warn)
        if setting is API_BASE:
            # Checked now, where the mistake is made: not later, when every command that
            # reads it fails, and names a --api-base the user never typed.
            from mh_webhook_cli.core.hosts import http_url

            http_url(value, setting.key)
    except InvalidValue as failure:
        raise InvalidValue(f"{failure}; nothing saved") from None
    config = load_config()
    config[setting.key] = value
    return value, save_config(config)


def unset_value(setting: Setting) -> Path | None:
    """Remove ``setting`` from the config file; its path, or None when it was not set."""
    config = load_config()
    if config.pop(setting.key, None) is None:
        return None
    return save_config(config)
