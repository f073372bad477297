"""Output that never holds the receiver: a stalled reader costs lines, never requests.

``mhw listen`` prints from the loop that answers requests. A plain ``write`` to a pipe whose
reader stopped reading (``| less`` left on one page, a stopped ``jq``) blocks once the pipe
holds 64 KiB: the loop stops, answers stop, nothing more is stored, and SIGTERM waits behind
the write. A terminal can stall the same way (Ctrl-S, a frozen tmux pane).

:class:`BackgroundWriter` hands the bytes to a thread of its own that does the blocking
``write``. The loop only appends to a buffer of at most ``limit`` bytes; beyond it whole
lines are dropped and counted. Why a thread rather than ``O_NONBLOCK`` on fd 1 with
``loop.add_writer``: the flag belongs to the open file description, which fd 1 shares with
the shell and every other process writing to the same terminal or pipe; a process killed
before it restores the flag leaves them with ``EAGAIN`` errors (the shell's own reads on a
terminal included). A thread changes nothing outside this process, and serves pipes and
terminals alike. It wakes at most once per :data:`WRITE_INTERVAL_SECONDS`: under load, what
the loop appends meanwhile goes out in one ``write``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

Item = TypeVar("Item")

WRITE_INTERVAL_SECONDS = 0.02
"""The least time between two writes of a :class:`BackgroundWriter`. A line that comes after
a quiet moment is written at once; under a flood the lines gather for at most this long, 50
writes a second, which no one watching sees. Waking the thread every loop turn instead cost
a listener 4% more CPU per request under bench/listen.py's load (paired A/B runs)."""
DEFAULT_LIMIT = 1 << 20
"""Bytes kept for a slow reader (about 10,000 listener lines) before lines are dropped."""


class BackgroundWriter:
    """Writes to ``fd`` from a daemon thread; :meth:`write` never blocks the caller."""

    def __init__(
        self,
        fd: int,
        *,
        limit: int = DEFAULT_LIMIT,
        on_reader_gone: Callable[[], None] | None = None,
        on_first_drop: Callable[[], None] | None = None,
    ) -> None:
        self.fd = fd
        self.limit = limit
        self.on_reader_gone = on_reader_gone
        """Called on the writer's thread when the reader has gone away (EPIPE), once."""
        self.on_first_drop = on_first_drop
        """Called on the caller's thread when a line is first dropped for a stalled reader."""
        self.dropped = 0
        """Lines not written: the buffer was full, or still held at :meth:`close`."""
        self.reader_gone = False
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[bytes] = []
        self._pending_lines = 0
        self._buffered = 0
        """Bytes pending plus those in the write under way."""
        self._in_flight_lines = 0
        self._closing = False
        self._idle = False
        """The thread waits for lines (not for the interval to pass): a write wakes it."""
        self._thread = threading.Thread(target=self._run, name=f"mhw-writer-{fd}", daemon=True)
        self._thread.start()

    def write(self, data: bytes, lines: int) -> bool:
        """Queue ``data`` (``lines`` whole lines); False when it was dropped instead."""
        with self._lock:
            if self.reader_gone or self._closing:
                return False
            accepted = self._buffered + len(data) <= self.limit
            if accepted:
                self._pending.append(data)
                self._pending_lines += lines
                self._buffered += len(data)
                if self._idle:
                    # All: close() may be waiting on the same condition, and must not take
                    # the writer's wake-up.
                    self._wake.notify_all()
                return True
            first_drop = not self.dropped
            self.dropped += lines
        if first_drop and self.on_first_drop is not None:
            self.on_first_drop()
        return False

    def close(self, timeout: float) -> None:
        """Let the reader take what is buffered for up to ``timeout`` seconds, then give up.

        Lines still held then count as dropped; the thread, perhaps blocked in a write the
        reader never takes, is left behind (a daemon: it does not hold the exit).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closing:
                return
            while self._buffered and not self.reader_gone:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.wait(remaining)
            self._closing = True
            if not self.reader_gone:
                self.dropped += self._pending_lines + self._in_flight_lines
            self._pending.clear()
            self._pending_lines = self._in_flight_lines = self._buffered = 0
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._idle = True
                    self._wake.wait()
                    self._idle = False
                if self._closing:
                    return
                chunk = b"".join(self._pending)
                self._in_flight_lines = self._pending_lines
                self._pending.clear()
                self._pending_lines = 0
            try:
                _write_all(self.fd, chunk)
            except OSError:  # EPIPE mostly; EIO from a closed terminal means the same
                self._gone()
                return
            with self._lock:
                self._buffered -= len(chunk)
                self._in_flight_lines = 0
                self._wake.notify_all()
                if self._closing:
                    return
                # Gathering, not waiting for lines: close() ends it early.
                self._wake.wait(WRITE_INTERVAL_SECONDS)

    def _gone(self) -> None:
        """The reader left (EPIPE), or fd is unusable: nothing more can be written, ever."""
        with self._lock:
            self.reader_gone = True
            self._pending.clear()
            self._pending_lines = self._in_flight_lines = self._buffered = 0
            self._wake.notify_all()
        if self.on_reader_gone is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the run is ending anyway
                self.on_reader_gone()


class PerTurn(Generic[Item]):
    """What a session shows during one turn of its event loop, written together at its end.

    A listener under load handles many requests a turn: the lines of all of them are drawn
    and handed to the :class:`BackgroundWriter` at once, instead of one by one. Outside
    a running loop (a library caller, a test) each item is written at once.
    """

    def __init__(self, write: Callable[[list[Item]], None]) -> None:
        self._write = write
        self._items: list[Item] = []

    def add(self, item: Item) -> None:
        if not self._items:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self._write([item])
                return
        self._items.append(item)

    def flush(self) -> None:
        """Write what this turn gathered (also at the end, when the loop runs no more turns)."""
        items, self._items = self._items, []
        if items:
            self._write(items)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def dropped_notice(dropped: int) -> str:
    """The summary's word on output lost to a reader that did not keep up."""
    return f"  {dropped} output line(s) dropped: stdout was not read fast enough"


STDOUT_GRACE_SECONDS = 1.0
STDERR_GRACE_SECONDS = 0.5
"""How long a session's end waits for a slow reader: together well within the 2 s in which
SIGINT or SIGTERM must end a session whatever its reader does."""


class SessionOutput:
    """stdout and stderr of a session, each through a :class:`BackgroundWriter`."""

    def __init__(self, on_reader_gone: Callable[[], None]) -> None:
        from mh_webhook_cli.report import console as output

        # Anything Python still buffers goes first, in order, before the writers take over.
        sys.stdout.flush()
        sys.stderr.flush()
        self.stdout = BackgroundWriter(
            sys.stdout.fileno(),
            on_reader_gone=on_reader_gone,
            on_first_drop=lambda: output.warn(
                "stdout is not being read: dropping output lines while it stalls "
                "(requests are still answered and stored)"
            ),
        )
        self.stderr = BackgroundWriter(sys.stderr.fileno())
        output.redirect("stdout", self.stdout)
        output.redirect("stderr", self.stderr)

    def close_stdout(self) -> int:
        """Stop writing to stdout (after a grace for the reader); the lines it dropped.

        stdout stays routed to the closed writer, which ignores the rest: a write now could
        block on the stalled reader again.
        """
        self.stdout.close(STDOUT_GRACE_SECONDS)
        return self.stdout.dropped

    def close(self) -> None:
        from mh_webhook_cli.report import console as output

        self.close_stdout()
        # Drained first, then unrouted: a line written straight to stderr meanwhile would
        # come out before the ones still queued.
        self.stderr.close(STDERR_GRACE_SECONDS)
        output.redirect("stderr", None)


@contextlib.contextmanager
def session_output(on_reader_gone: Callable[[], None]) -> Iterator[SessionOutput]:
    """Route the session's stdout and stderr through writers that never block it.

    ``on_reader_gone`` runs on a writer thread when stdout's reader has left (``| head``).
    """
    routed = SessionOutput(on_reader_gone)
    try:
        yield routed
    finally:
        routed.close()
