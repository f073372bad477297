"""How settings look (``mhw config list`` and ``get``): secrets always masked."""

from __future__ import annotations

from collections.abc import Sequence

from mh_webhook_cli.core.settings import Resolved
from mh_webhook_cli.report.console import Format, columns, emit_json, show


def setting_json(resolved: Resolved) -> dict[str, object]:
    return {
        "key": resolved.setting.key,
        "value": resolved.display or None,
        "source": resolved.source.value,
        "env": resolved.setting.env,
        "secret": resolved.setting.secret,
    }


def show_settings(resolved: Sequence[Resolved], output_format: Format) -> None:
    """Every setting: its value (masked when secret), where it came from, its variable."""
    if output_format is Format.JSON:
        emit_json([setting_json(item) for item in resolved])
        return
    header = [(title, "bold") for title in ("setting", "value", "from", "env variable")]
    rows = [
        [
            (item.setting.key, ""),
            (item.display, "") if item.value else ("unset", "dim"),
            (item.source.value, ""),
            (item.setting.env, "dim"),
        ]
        for item in resolved
    ]
    show(columns([header, *rows]))


def show_setting(resolved: Resolved, output_format: Format) -> None:
    """One setting's effective value; in text, nothing at all when it is unset."""
    if output_format is Format.JSON:
        emit_json(setting_json(resolved))
    elif resolved.value is not None:
        print(resolved.display)
