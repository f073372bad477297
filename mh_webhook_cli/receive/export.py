"""Exporting a whole capture store on two cores: this process and a forked helper.

What an export costs is Python turning rows into text (SQLite reads a million rows in
0.5 s of the ~5.5 s), and a thread cannot share that work (the GIL). So a large store is
split into ranges of rows, rendered in turn by this process and by a helper forked from
it, and written by this process in order. What the text is (JSON lines, HAR) is the
caller's: :mod:`mh_webhook_cli.report.events` hands its renderer in, and the helper,
forked, runs the same one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from mh_webhook_cli.errors import StoreError
from mh_webhook_cli.receive.store import Position, Store, StoredRow

SPLIT_FROM_ROWS = 20_000
"""An export of fewer requests stays in one process: it takes under 0.1 s, and forking
and splitting would be a noticeable part of that."""
SPLIT_RANGE_ROWS = 500
"""The requests in each range of a split export: the text of 500 usual webhooks (0.6 MB
as JSON lines, 0.7 MB as HAR) fits in the pipe from the helper (:data:`_PIPE_BYTES`)
with room for the end of the range before it, so the helper never waits for this
process. Ranges of 1,000 filled the pipe: the helper stopped in the middle of each
range until it was read, and a HAR export of a million hardly ran in parallel (7.8 s for
8.8 s of CPU; 4.6 s for 8.4 s with ranges of 500)."""


Render = Callable[[Iterable[Sequence[StoredRow]]], Iterator[tuple[bytes, int]]]
"""Pages of rows to chunks of text, each with how many rows it holds (an export's format)."""
Write = Callable[[bytes, int], None]
"""Takes each chunk of text, with its count of rows, in order."""


def split_export(
    path: Path,
    render: Render,
    write: Write,
    *,
    split_rows: int = SPLIT_RANGE_ROWS,
    split_from_rows: int = SPLIT_FROM_ROWS,
) -> None:
    """Every request in the store at ``path``, oldest first, ``render``-ed and handed to
    ``write`` in order.

    Turning rows into text is nearly all of an export's time, all of it Python's, so one
    core does it however many there are (a thread does not help: the GIL). From
    ``split_from_rows`` requests on, and where there are two cores and ``os.fork``, a
    forked helper process renders every other range of ``split_rows`` requests while
    this one renders the others, and this one writes both in order: each range is one
    short read, and the memory is a range or two. The last range reaches the end of the
    store, so requests a listener stores meanwhile are exported as a single process
    exports them. A million requests on two idle cores (``bench/store.py``): 3.6 s as
    JSON lines and 4.9 s as HAR, where one process needs about 5.5 s and 8.5 s of CPU.
    Whatever ``write`` writes to must be flushed before: a forked helper would hold a copy.
    """
    with Store(path) as store:
        if store.count() < split_from_rows or not _can_split():
            _write_all(render(store.pages(oldest_first=True)), write)
            return
    # Closed before forking: a child must not inherit an open SQLite connection (SQLite's
    # rule; its locks are per process). Each process opens its own.
    try:
        helper = _Helper(path, render)
    except OSError:  # no process to spare: this one exports it all
        with Store(path) as store:
            _write_all(render(store.pages(oldest_first=True)), write)
            return
    with helper, Store(path) as store:
        start: Position | None = None
        asked = False
        while True:
            middle = store.position_after(start, split_rows)
            end = None if middle is None else store.position_after(middle, split_rows)
            if middle is None or end is None:
                break
            # The helper's next range is asked for before its last one is read, so that it
            # renders while this process writes that one out and renders its own.
            helper.render(middle, end)
            if asked:
                helper.relay(write)
            _write_all(render(store.pages(oldest_first=True, after=start, through=middle)), write)
            asked = True
            start = end
        if asked:
            helper.relay(write)
        _write_all(render(store.pages(oldest_first=True, after=start)), write)


def _write_all(chunks: Iterable[tuple[bytes, int]], write: Write) -> None:
    for text, rows in chunks:
        write(text, rows)


def _can_split() -> bool:
    if not hasattr(os, "fork"):
        return False
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) >= 2
    return (os.cpu_count() or 1) >= 2


_FRAME = struct.Struct("<qq")
"""What the helper sends before each chunk: its length and how many rows it holds. A
length of -1 ends a range; -2 says the helper failed, with the message's length."""
_RANGE = struct.Struct("<dddd")
"""What the helper is asked to render: the positions after which and through which."""
_PIPE_BYTES = 1 << 20
"""The pipe from the helper: Linux's largest by default (64 KB otherwise)."""


_STOPPED = "export: the helper process stopped"


class _Helper:
    """A forked process rendering the ranges :func:`export_store` asks for, in order."""

    def __init__(self, path: Path, render: Render) -> None:
        import fcntl  # POSIX, like os.fork

        requests_read, requests_write = os.pipe()
        results_read, results_write = os.pipe()
        with contextlib.suppress(AttributeError, OSError):
            fcntl.fcntl(results_write, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        try:
            self._pid = os.fork()
        except OSError:
            for descriptor in (requests_read, requests_write, results_read, results_write):
                os.close(descriptor)
            raise
        if self._pid == 0:  # the helper, which never returns into the parent's code
            try:
                os.close(requests_write)
                os.close(results_read)
                _help(path, render, requests_read, results_write)
            finally:
                os._exit(1)
        os.close(requests_read)
        os.close(results_write)
        self._requests = requests_write
        self._results = open(results_read, "rb")  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> _Helper:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        os.close(self._requests)  # the helper's last read: it exits
        self._results.close()  # a helper still writing gets EPIPE: it exits
        if kind is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGTERM)
        os.waitpid(self._pid, 0)

    def render(self, after: Position, through: Position) -> None:
        """Ask for the rows past ``after`` through ``through``, as text."""
        try:
            os.write(self._requests, _RANGE.pack(*after, *through))
        except BrokenPipeError:  # not the reader of the output: that one is still there
            raise StoreError(self._last_words()) from None

    def relay(self, write: Write) -> None:
        """Write out the oldest range asked for and not written yet, as the helper made it."""
        while True:
            header = self._results.read(_FRAME.size)
            if len(header) < _FRAME.size:
                raise StoreError(_STOPPED)
            length, rows = _FRAME.unpack(header)
            if length == -1:
                return
            if length == -2:
                raise StoreError(self._results.read(rows).decode("utf-8", "replace"))
            write(self._results.read(length), rows)

    def _last_words(self) -> str:
        """Why the helper stopped, as it said before it went (the text it made is skipped):
        it can fail and exit before this process reads what it rendered."""
        while len(header := self._results.read(_FRAME.size)) == _FRAME.size:
            length, size = _FRAME.unpack(header)
            if length == -2:
                return self._results.read(size).decode("utf-8", "replace")
            if length > 0:
                self._results.read(length)
        return _STOPPED


def _help(path: Path, render: Render, requests: int, results: int) -> NoReturn:
    """The helper's whole life: render each range asked for, until there are no more."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it on Ctrl-C
    code = 0
    with open(requests, "rb") as asked, open(results, "wb") as out:
        try:
            with Store(path) as store:
                while len(request := asked.read(_RANGE.size)) == _RANGE.size:
                    bounds = _RANGE.unpack(request)
                    pages = store.pages(oldest_first=True, after=bounds[:2], through=bounds[2:])
                    for text, rows in render(pages):
                        out.write(_FRAME.pack(len(text), rows))
                        out.write(text)
                    out.write(_FRAME.pack(-1, 0))
                    out.flush()
        except BrokenPipeError:
            code = 1  # the parent stopped reading: it failed, and says why
        except BaseException as failure:  # reported by the parent
            code = 1
            message = str(failure).encode()
            with contextlib.suppress(OSError):
                out.write(_FRAME.pack(-2, len(message)) + message)
                out.flush()
    os._exit(code)
