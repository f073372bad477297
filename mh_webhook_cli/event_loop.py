"""Running mhw's long-lived commands: one event loop per command, uvloop where it is installed,
and the one way they stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed (the faster loop), else on asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def stop_on_signals(stop: Callable[[], object]) -> None:
    """Call ``stop`` on the running loop at Ctrl-C (SIGINT) or SIGTERM, instead of raising.

    A session ends cleanly from there (its summary, the store closed, exit 0), and a script
    may send SIGTERM the moment it learns the session is ready: call this before that.
    """
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
