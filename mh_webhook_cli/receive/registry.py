"""Which ``mhw listen`` processes are running, so that other commands can find them.

Each listener announces itself with a small JSON file, ``<pid>.json``, in
``listeners/`` under mhw's user state directory (``~/.local/state/mhw`` on
Linux), and removes it when it stops. A listener killed outright cannot clean
up, so readers check that the process still exists and delete what is stale:
the directory never needs looking after. The files name local URLs and store
paths, so they are private to their owner (mode 0600, directory 0700).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mh_webhook_cli.files import write_private


@dataclass(frozen=True)
class RunningListener:
    """What a running ``mhw listen`` tells other commands about itself."""

    pid: int
    url: str
    """Its local URL, e.g. ``http://127.0.0.1:8787/``."""
    port: int
    public_url: str | None
    """The ngrok URL, when it opened a tunnel."""
    webhook_url: str
    """The URL to register in the Developer Hub: on the public URL when there is one."""
    store: str | None
    """Its capture store, or None with ``--no-store``."""
    started_at: str
    """When it started listening, ISO 8601 in UTC."""


@dataclass(frozen=True)
class Endpoint:
    """Where a running listener receives webhooks."""

    url: str
    public_url: str | None
    port: int
    path: str | None = None
    ui_url: str | None = None
    """The web inspector's page, with ``--ui``."""

    @property
    def webhook_url(self) -> str:
        """The URL to register in the Developer Hub: the public one when there is a tunnel."""
        if self.public_url is None:
            return self.url
        return self.public_url.rstrip("/") + (self.path or "/webhook")


def registry_dir() -> Path:
    from platformdirs import user_state_path

    return user_state_path("mhw", appauthor=False) / "listeners"


def register(entry: RunningListener, directory: Path | None = None) -> Path:
    """Announce ``entry``; the file to pass to :func:`unregister` when it stops."""
    directory = directory or registry_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{entry.pid}.json"
    # Readers must never see half a file: they would take it for a stale one and delete it.
    write_private(path, json.dumps(asdict(entry)))
    return path


def register_this_listener(endpoint: Endpoint, store: Path | None) -> Path | None:
    """Announce the calling process as a listener; None when that cannot be written.

    A listener works without being announced (a read-only home, say): only
    ``mhw doctor`` and ``mhw trigger --attach`` will not find it.
    """
    entry = RunningListener(
        pid=os.getpid(),
        url=endpoint.url,
        port=endpoint.port,
        public_url=endpoint.public_url,
        webhook_url=endpoint.webhook_url,
        store=str(store) if store else None,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    try:
        return register(entry)
    except OSError:
        return None


def unregister(path: Path) -> None:
    """Remove an announcement; one already gone is fine."""
    path.unlink(missing_ok=True)


def running_listeners(directory: Path | None = None) -> list[RunningListener]:
    """The listeners whose process is alive, oldest first; stale or unreadable entries are
    deleted on the way."""
    directory = directory or registry_dir()
    try:
        paths = sorted(directory.glob("*.json"))
    except OSError:
        return []
    running: list[RunningListener] = []
    for path in paths:
        entry = _read(path)
        if entry is None or not _alive(entry.pid):
            unregister(path)
        else:
            running.append(entry)
    return sorted(running, key=lambda entry: entry.started_at)


def _read(path: Path) -> RunningListener | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        entry = RunningListener(**data)
    except (OSError, ValueError, TypeError):
        return None
    valid = (
        isinstance(entry.pid, int)
        and path.stem == str(entry.pid)
        and isinstance(entry.url, str)
        and isinstance(entry.webhook_url, str)
        and isinstance(entry.port, int)
    )
    return entry if valid else None


def _alive(pid: int) -> bool:
    if sys.platform == "win32":
        # Signal 0 there is CTRL_C_EVENT and would stop the listener: trust the entry;
        # the caller's connection check tells a dead one.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user
    return True
