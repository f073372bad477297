"""The capture store: every webhook request ``mhw listen`` receives, in one SQLite file.

The listener must never lose a request, so a request is committed here before
its HTTP answer is sent. Committing one transaction per request would cap the
listener at the disk's commit rate; :class:`GroupCommitter` instead commits
the requests of one event-loop turn in one transaction, on a writer thread so
that the loop never waits for a commit or a lock, and only then resolves each
request's future, so an answer still never goes out before its row is durable.
Opening the file (and migrating an old one) does run on the loop's thread, once,
before the listener accepts its first connection.

The file is opened in WAL mode: ``mhw events`` in other processes read a
consistent snapshot while the listener writes, and a writer killed mid-burst
(SIGKILL) leaves every committed transaction intact and the rest rolled back.
``synchronous=NORMAL`` survives a process crash (what SIGKILL is); only a power
loss can drop the last few commits, which a developer tool can accept for the
throughput it buys. A listener copies the WAL back into the database on a thread
of its own (:class:`_Checkpointer`), so that no commit, and no answer, waits for it.

Reading streams: :meth:`Store.rows` gives a page of rows at a time, each page one
short read, so ``mhw events`` holds a page whatever the store holds; :meth:`Store.pages`
gives the pages themselves, between two positions in time order when asked (an export
splits the store into such ranges with :meth:`Store.position_after`). The schema
changes only through the named migrations of :mod:`mh_webhook_cli.receive.migrations`.

Request bodies and headers can be sensitive, so the file is created 0600 in a
directory created 0700. This module is the only one that imports sqlite3.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial, wraps
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    NamedTuple,
    ParamSpec,
    TypedDict,
    TypeVar,
)

from mh_webhook_cli.core.json_text import dumps, escape_lone_surrogates
from mh_webhook_cli.core.request import ForwardResult, Received
from mh_webhook_cli.errors import StoreClosed, StoreError, UsageError
from mh_webhook_cli.receive.migrations import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    import asyncio

    from typing_extensions import Unpack  # typing's own from Python 3.11

STORE_ENV = "MHW_STORE"
BUSY_TIMEOUT_SECONDS = 5.0
"""How long a connection waits for another one's write lock before failing."""
LOCK_POLL_SECONDS = 0.001
"""How often a writer tries again for a lock another connection holds."""
INLINE_CHECKPOINT_BYTES = 64 * 1024 * 1024
"""A listener's writer copies the WAL into the database itself only once the WAL holds this
much: short of that, :class:`_Checkpointer` does it on its own thread."""
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
"""What a WAL file is cut back to once it starts over, after a flood made it longer."""
GROUP_INTERVAL_SECONDS = 0.001
"""The least time between two groups handed to the store's writer. Under a flood, a group
then gathers what arrives meanwhile, and the costs of a commit (taking the lock, the WAL's
frames, waking two threads) are shared by more requests: 3.5-4% less CPU a request under
bench/listen.py's load, p99 unchanged (paired A/B runs). A request arriving after a quiet
millisecond never waits for it."""
CHECKPOINT_PAUSE_SECONDS = 0.05
"""The least time between two background checkpoints. Each syncs the WAL and the database
on the listener's core, a cost that hardly depends on how much it copies. Under
bench/listen.py's load, against 25 ms: 5-7% less CPU per request, p99 3.6-3.8 ms to
5.0-5.6 ms (two sets of paired A/B runs); 100 ms saved no more and took p99 to 6.4 ms.
Short pauses keep each checkpoint, and what the in-line one at
:data:`INLINE_CHECKPOINT_BYTES` finds left to copy, small."""
SQLITE_PAGE_BYTES = 8192
"""SQLite's page size for a new store, between size on disk and a listener's CPU.

A webhook's row is 700-900 bytes: a 4 KB page holds four and leaves a fifth of itself
empty (bench/store.py's rows, a 519-byte body, schema 4: 1,103 bytes an event at 4 KB, 987
at 8 KB, 939 at 16 KB; schema 5: 1,018 at 8 KB, 969 at 16 KB). But every commit writes
and checksums each page it touched, table and indexes, 5-6 of them a group: at 16 KB a
listener under bench/listen.py's load spent 4% more CPU per request than at 8 KB (paired
A/B runs, 10 rounds), more than its 5% fewer bytes were worth."""
CLEAR_BATCH_ROWS = 2000
"""Rows deleted per transaction by :meth:`Store.clear`: holds the write lock for ~10 ms."""
CLEAR_PAUSE_SECONDS = 0.005
"""The pause after each batch of :meth:`Store.clear`, in which a waiting writer takes the lock."""

_INSERT = """
INSERT INTO requests (
    received_at, method, path, headers, body, body_hash, client, event_type,
    project_id, verification, findings, response_status, retry_of
) VALUES (
    ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
    -- A retry is a later delivery of the same event: same type, project and bytes.
    -- A body without an event type is no event, so never a retry: identical junk
    -- ('{}' floods, pings) is not Magic Hour retrying, and '= NULL' makes SQLite skip the
    -- lookup. An event is looked up by its project id (see migrations.index_projects),
    -- one without by its hash alone; SQLite tests '?9 IS [NOT] NULL' once, before either
    -- lookup, so only one runs. INDEXED BY: an insert fails loudly rather than ever
    -- scanning the table. ORDER BY id LIMIT 1 reads one entry; min(id) would read every
    -- equal body, per insert.
    coalesce(
        (SELECT id FROM requests INDEXED BY requests_project
         WHERE ?9 IS NOT NULL AND project_id = ?9 AND body_hash = ?6 AND event_type = ?8
         AND body = ?5 ORDER BY id LIMIT 1),
        (SELECT id FROM requests INDEXED BY requests_retry
         WHERE ?9 IS NULL AND project_id IS NULL AND body_hash = ?6 AND event_type = ?8
         AND body = ?5 ORDER BY id LIMIT 1)
    )
)
"""
_CLEAR_BATCH_END = "SELECT max(id) FROM (SELECT id FROM requests WHERE id <= ? ORDER BY id LIMIT ?)"
_INSERT_FORWARD = "INSERT INTO forwards (request_id, result) VALUES (?, ?)"
# Every query below is put together from these constants, never from input: hence the noqa S608.
_COLUMNS = (
    "id, received_at, method, path, headers, body, client, event_type, project_id, "
    "verification, findings, response_status, retry_of"
)
_INVALID = "(verification != 'ok' OR findings != '[]')"
"""What ``--invalid`` selects; also the WHERE of the index it walks (word for word)."""
_ROW = (
    f"{_COLUMNS}, "  # noqa: S608
    # A request's forward results as one JSON array, in the order stored, in the same
    # statement (so the same snapshot) as the request. The EXISTS does not depend on the
    # row, so SQLite evaluates it once per statement: a store that never forwarded (the
    # usual one) skips the per-row lookup, 0.3 s of a million-row export.
    "CASE WHEN EXISTS (SELECT 1 FROM forwards) THEN "
    "coalesce((SELECT '[' || group_concat(result, ',') || ']' FROM "
    "(SELECT result FROM forwards WHERE request_id = requests.id ORDER BY id)), '[]') "
    "ELSE '[]' END, "
    f"NOT {_INVALID}"
)
_GLOB_SPECIALS = frozenset("*?[")
_FIRST_TYPE = "SELECT min(event_type) FROM requests"
_NEXT_TYPE = "SELECT min(event_type) FROM requests WHERE event_type > ?"
MERGE_TYPES_SEEN = 256
"""``--type`` with a pattern reads the store's distinct event types, up to this many..."""
MERGE_TYPES = 32
"""...and merges the rows of up to this many matching ones; past either, it walks time order."""
PAGE_ROWS = 1000
"""Rows read from SQLite at a time by :meth:`Store.rows`: what a listing holds in memory..."""
PAGE_BYTES = 8 * 1024 * 1024
"""...or fewer, once their bodies come to this many bytes (a page of large bodies)."""


Position = tuple[float, float]
"""Where a request lies in time order: its ``(received_at, id)``."""


class RowFilters(TypedDict, total=False):
    """What :meth:`Store.rows` (and :meth:`Store.requests`) select, and in which order."""

    event_glob: str | None
    since: float | None
    invalid_only: bool
    project: str | None
    limit: int | None
    oldest_first: bool
    page_size: int
    following: int | None


class StoredRow(NamedTuple):
    """A request as stored: its JSON columns still the text mhw wrote, not parsed.

    What ``mhw events`` streams: an export turns a row into a line without building a
    :class:`Received` (whose parsing took most of an export's time), and splices
    the stored JSON in as it is. :meth:`request` reads it in full.
    """

    id: int
    received_at: float
    method: str
    path: str
    headers: str
    """``[[name, value], ...]`` as JSON."""
    body: bytes
    client: str
    event_type: str | None
    project_id: str | None
    verification: str
    findings: str
    """A JSON array of :data:`~mh_webhook_cli.core.request.FindingRecord`."""
    response_status: int
    retry_of: int | None
    forwards: str
    """A JSON array of :class:`ForwardResult`, in the order stored."""
    valid: int
    """1 when signed correctly and matching the schema (what ``--invalid`` leaves out)."""

    def request(self) -> Received:
        return _stored(self)


_stored_row: Callable[[tuple[Any, ...]], StoredRow] = partial(tuple.__new__, StoredRow)
"""A row of :data:`_ROW`'s columns as a :class:`StoredRow`, with no Python frame per row:
``StoredRow._make`` took 0.3 s of a million-row export."""


def default_store_path() -> Path:
    """``$MHW_STORE``, else ``events.sqlite3`` in mhw's user data directory."""
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser()
    from platformdirs import user_data_path

    return user_data_path("mhw", appauthor=False) / "events.sqlite3"


def open_existing(path: Path | None) -> Store | None:
    """The store at ``path`` (else the default), or None when nothing was ever captured
    there: reading must not create one."""
    resolved = existing_path(path)
    return None if resolved is None else Store(resolved)


def existing_path(path: Path | None) -> Path | None:
    """Where the store at ``path`` (else the default) is, or None when there is none yet."""
    resolved = path.expanduser() if path is not None else default_store_path()
    return resolved if resolved.exists() else None


def stored_row(request_id: int, path: Path | None) -> StoredRow:
    """One captured request, or a one-line error naming what to run instead."""
    opened = open_existing(path)
    found = None
    if opened is not None:
        with opened:
            found = opened.row(request_id)
    if found is None:
        raise UsageError(f"no request {request_id} in the capture store (see 'mhw events list')")
    return found


def stored_request(request_id: int, path: Path | None) -> Received:
    """:func:`stored_row`, read in full."""
    return stored_row(request_id, path).request()


P = ParamSpec("P")
R = TypeVar("R")


def _reported(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    """Turn SQLite's exceptions into a one-line :class:`StoreError` that names the file."""

    @wraps(method)
    def wrapper(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as failure:
            raise StoreError(f"capture store {self.path}: {failure}") from failure

    return wrapper


class Store:
    """One connection to the store, used by one thread at a time.

    ``mhw events`` opens it and uses it on its own thread. ``mhw listen`` opens it on
    the event loop's thread and hands it to a :class:`GroupCommitter`, whose writer
    thread is its only user from then on: hence ``check_same_thread=False``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = _connect(path)
        self._give_up = threading.Event()
        """Set by :meth:`give_up_waiting`, from any thread."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @_reported
    def add_many(self, requests: Sequence[Received]) -> list[Receipt]:
        """Store ``requests`` in one transaction (a group commit); their receipts, in order."""
        try:
            rows = [_row(request) for request in requests]
        except (TypeError, ValueError) as failure:
            # Findings that are not JSON: reported as SQLite's refusals are, so that a
            # committer fails this request alone (see GroupCommitter._store_requests).
            raise StoreError(f"capture store {self.path}: {failure}") from failure
        with _transaction(self._connection, give_up=self._give_up):
            return _insert_requests(self._connection, rows)

    def add(self, request: Received) -> int:
        return self.add_many([request])[0].id

    @_reported
    def add_forwards(self, forwards: Sequence[tuple[int, ForwardResult]]) -> None:
        """Attach what forwarding requests did, as ``(request id, result)``, in one transaction.

        Forwarding happens after the answer, so its results are stored separately.
        """
        rows = [(request_id, dumps(result)) for request_id, result in forwards]
        with _transaction(self._connection, give_up=self._give_up):
            self._connection.executemany(_INSERT_FORWARD, rows)

    def trace_lock_holds(self) -> LockHolds:
        """From now on, time each write transaction of this connection: how long
        :meth:`clear` (or anything else) keeps a listener waiting, for a benchmark or a test."""
        return LockHolds(self._connection)

    def give_up_waiting(self) -> None:
        """From any thread: a wait for another connection's write lock, now or later, fails
        at once with :class:`StoreClosed` (at shutdown, which must not wait for a stranger)."""
        self._give_up.set()

    def get(self, request_id: int) -> Received | None:
        row = self.row(request_id)
        return None if row is None else self._read(row)

    @_reported
    def row(self, request_id: int) -> StoredRow | None:
        """One request as stored, or None."""
        sql = f"SELECT {_ROW} FROM requests WHERE id = ?"  # noqa: S608
        found = self._connection.execute(sql, (request_id,)).fetchone()
        return None if found is None else _stored_row(found)

    def requests(self, **filters: Unpack[RowFilters]) -> Iterator[Received]:
        """Like :meth:`rows`, each row read into a :class:`Received`."""
        for row in self.rows(**filters):
            yield self._read(row)

    def _read(self, row: StoredRow) -> Received:
        try:
            return row.request()
        except StoreError as failure:
            raise StoreError(f"capture store {self.path}: {failure}") from failure

    def rows(
        self,
        *,
        event_glob: str | None = None,
        since: float | None = None,
        invalid_only: bool = False,
        project: str | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
        page_size: int = PAGE_ROWS,
        following: int | None = None,
    ) -> Iterator[StoredRow]:
        """Requests newest first (or oldest first), ``page_size`` rows at a time from SQLite.

        ``following``: only the rows listed after request ``following`` in that order, the
        next page of a listing shown a page at a time (the web inspector's): each page costs
        the same, however deep.

        ``event_glob`` matches like :func:`fnmatch.fnmatchcase`. Memory stays the same
        whatever the store holds: each page is one short read transaction that resumes
        after the last row of the one before (by ``(received_at, id)``, which an index
        holds in order), so no snapshot is held while the caller writes a million lines,
        and a listener's checkpoints go on meanwhile. Each filter walks an index in the
        order shown (see ``migrations.index_filters``), so a limited listing reads about
        as many rows as it shows, however many the store holds. A pattern (``video.*``)
        merges the rows of each event type it matches, each type's from its index.
        ``project``: only the requests whose body names this project id (its index holds
        them, sorted here: a project has a few).
        """
        start = self._position(following, oldest_first)
        filters = (since, invalid_only, project, limit, oldest_first, page_size, start, None)

        def walk(event_type: str | None, pattern: str | None) -> Iterator[StoredRow]:
            return itertools.chain.from_iterable(self._walk_pages(event_type, pattern, *filters))

        if event_glob is None or _GLOB_SPECIALS.isdisjoint(event_glob):
            return walk(event_glob, None)
        # SQLite's GLOB is fnmatch's language except that it negates with ^ instead of !.
        pattern = event_glob.replace("[!", "[^")
        types = self._event_types(pattern)
        if types is None:
            # Too many kinds of event to merge: walk time order, testing each row.
            return walk(None, pattern)
        # Each matching type's rows come in order from (event_type, received_at); merged,
        # they are the pattern's rows in order, without sorting every match of it.
        streams = [walk(event_type, None) for event_type in types]
        merged = heapq.merge(*streams, key=_time_order, reverse=not oldest_first)
        return itertools.islice(merged, limit)

    def pages(
        self,
        *,
        oldest_first: bool = False,
        after: Position | None = None,
        through: Position | None = None,
    ) -> Iterator[list[StoredRow]]:
        """Every request, as :meth:`rows` gives them, in the pages read from SQLite; oldest
        first, only those past ``after`` and up to ``through`` (positions from
        :meth:`position_after`).

        For an export, which turns a page into text at once (see
        :func:`mh_webhook_cli.report.events.export`): a loop over a page costs less per row
        than a chain of generators, and a page is what one snapshot holds.
        """
        start = self._position(None, oldest_first) if after is None else after
        return self._walk_pages(
            None, None, None, False, None, None, oldest_first, PAGE_ROWS, start, through
        )

    @_reported
    def position_after(self, after: Position | None, rows: int) -> Position | None:
        """Where the ``rows``-th request past ``after`` (else from the oldest) lies in time
        order; None when fewer are stored.

        Read from the time index alone (it holds each id too), so it costs about a
        microsecond a row skipped: how an export splits the store into ranges that two
        processes render at once.
        """
        found = self._connection.execute(
            "SELECT received_at, id FROM requests WHERE (received_at, id) > (?, ?) "
            "ORDER BY received_at, id LIMIT 1 OFFSET ?",
            (*(after or self._position(None, True)), rows - 1),
        ).fetchone()
        if found is None:
            return None
        try:
            return (float(found[0]), float(found[1]))
        except (TypeError, ValueError) as failure:  # written by another program
            raise StoreError(f"a stored request is not as mhw writes it: {failure}") from None

    def _walk_pages(
        self,
        event_type: str | None,
        pattern: str | None,
        since: float | None,
        invalid_only: bool,
        project: str | None,
        limit: int | None,
        oldest_first: bool,
        page_size: int,
        start: Position,
        through: Position | None,
    ) -> Iterator[list[StoredRow]]:
        """:meth:`rows` of one event type, or of those matching ``pattern``, a page (a list of
        rows) at a time, from just past ``start`` and up to ``through`` in the walk's order
        when given; never an empty page."""
        conditions: list[str] = []
        parameters: list[Any] = []
        if event_type is not None:
            conditions.append("event_type = ?")
            parameters.append(event_type)
        if pattern is not None:
            # The unary + keeps SQLite off the type index: its range would be sorted by time
            # for every page. Walking time order finds the first rows without sorting.
            conditions.append("+event_type GLOB ?")
            parameters.append(pattern)
        if since is not None:
            conditions.append("received_at >= ?")
            parameters.append(since)
        if invalid_only:
            conditions.append(_INVALID)
        source = "requests"
        if project is not None:
            # A project has a handful of requests (started, completed, retries): read them
            # from its index and sort them, rather than walk time order looking for them.
            conditions.append("project_id = ?")
            parameters.append(escape_lone_surrogates(project))
            source = "requests INDEXED BY requests_project"
        order, after = ("ASC", ">") if oldest_first else ("DESC", "<")
        if through is not None:
            conditions.append(f"(received_at, id) {'<=' if oldest_first else '>='} (?, ?)")
            parameters.extend(through)
        where = "".join(f" AND {condition}" for condition in conditions)
        sql = (
            f"SELECT {_ROW} FROM {source} WHERE (received_at, id) {after} (?, ?){where} "  # noqa: S608
            f"ORDER BY received_at {order}, id {order} LIMIT ?"
        )
        if project is not None:
            # One statement, sorted once, read a page at a time: paged like the others, each
            # page sorted all of the project's rows again (quadratic in a flood of one id).
            # Its snapshot is held meanwhile, which a project's few rows make short.
            everything = -1 if limit is None else limit
            yield from self._stream(sql, (*start, *parameters, everything), page_size)
            return
        resume = start
        remaining = limit
        while remaining is None or remaining > 0:
            size = page_size if remaining is None else min(page_size, remaining)
            page, whole = self._page(sql, (*resume, *parameters, size))
            if page:
                yield page
            if whole and len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            resume = (page[-1].received_at, page[-1].id)

    @_reported
    def _position(self, request_id: int | None, oldest_first: bool) -> tuple[float, float]:
        """Where a walk starts: just past request ``request_id``, else at an end of the store
        (the id compares after every id of the same time, so that no row is skipped)."""
        if request_id is not None:
            found = self._connection.execute(
                "SELECT received_at, id FROM requests WHERE id = ?", (request_id,)
            ).fetchone()
            if found is not None:
                return (float(found[0]), float(found[1]))
        return (float("-inf"), 0.0) if oldest_first else (float("inf"), 0.0)

    def after(self, request_id: int, *, since: float | None = None) -> list[Received]:
        """Requests stored after ``request_id`` (received from ``since`` on), in the order
        stored: what a follower of a running listener has not seen yet (``mhw trigger
        --attach`` polls this, reading only what is new each time)."""
        sql = f"SELECT {_ROW} FROM requests WHERE id > ?"  # noqa: S608
        parameters: list[Any] = [request_id]
        if since is not None:
            sql += " AND received_at >= ?"
            parameters.append(since)
        rows, _ = self._page(sql + " ORDER BY id", parameters)
        return [self._read(row) for row in rows]

    @_reported
    def _event_types(self, pattern: str) -> list[str] | None:
        """The stored event types that GLOB ``pattern`` matches, read from the type index
        one seek per type; None when the store holds more than :data:`MERGE_TYPES_SEEN`
        types (junk from strangers), or the pattern matches more than :data:`MERGE_TYPES`."""
        matching: list[str] = []
        (event_type,) = self._connection.execute(_FIRST_TYPE).fetchone()
        for _ in range(MERGE_TYPES_SEEN):
            if event_type is None:
                return matching
            if self._connection.execute("SELECT ? GLOB ?", (event_type, pattern)).fetchone()[0]:
                matching.append(event_type)
                if len(matching) > MERGE_TYPES:
                    return None
            (event_type,) = self._connection.execute(_NEXT_TYPE, (event_type,)).fetchone()
        return None

    @_reported
    def _page(self, sql: str, parameters: Sequence[Any]) -> tuple[list[StoredRow], bool]:
        """The rows of one page, and False when it stopped early at :data:`PAGE_BYTES`.

        One statement, so one snapshot: each row's forwards are those of its moment.
        """
        rows: list[StoredRow] = []
        held = 0
        cursor = self._connection.execute(sql, parameters)
        try:
            for row in map(_stored_row, cursor):
                rows.append(row)
                held += len(row.body)
                if held >= PAGE_BYTES:
                    return rows, False
        finally:
            cursor.close()
        return rows, True

    def _stream(
        self, sql: str, parameters: Sequence[Any], page_size: int
    ) -> Iterator[list[StoredRow]]:
        """The rows of one statement, ``page_size`` at a time."""
        try:
            cursor = self._connection.execute(sql, parameters)
            try:
                while page := list(map(_stored_row, cursor.fetchmany(page_size))):
                    yield page
            finally:
                cursor.close()
        except sqlite3.Error as failure:
            raise StoreError(f"capture store {self.path}: {failure}") from failure

    @_reported
    def count(self) -> int:
        return int(self._connection.execute("SELECT count(*) FROM requests").fetchone()[0])

    @_reported
    def clear(self) -> int:
        """Delete every request stored so far and its forward results; how many there were.

        In batches of :data:`CLEAR_BATCH_ROWS`, one short transaction each, with a
        pause between them: deleting a million rows at once held the write lock for
        2.3 s, and a listener on the same store could answer nobody meanwhile.
        Requests that arrive during the clear are kept.
        """
        connection = self._connection
        (last,) = connection.execute("SELECT max(id) FROM requests").fetchone()
        deleted = 0
        while last is not None:
            with _transaction(connection, give_up=self._give_up):
                (upper,) = connection.execute(_CLEAR_BATCH_END, (last, CLEAR_BATCH_ROWS)).fetchone()
                if upper is None:
                    break
                connection.execute("DELETE FROM forwards WHERE request_id <= ?", (upper,))
                deleted += connection.execute(
                    "DELETE FROM requests WHERE id <= ?", (upper,)
                ).rowcount
            time.sleep(CLEAR_PAUSE_SECONDS)
        return deleted

    def close(self) -> None:
        self._connection.close()


class LockHolds:
    """How long a connection held the write lock each time, from its statements' trace."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.seconds: list[float] = []
        """One entry per committed write transaction, in order."""
        self._taken = 0.0
        connection.set_trace_callback(self._statement)

    def _statement(self, sql: str) -> None:
        if sql == "BEGIN IMMEDIATE":
            self._taken = time.perf_counter()
        elif sql == "COMMIT":
            self.seconds.append(time.perf_counter() - self._taken)


class GroupCommitter:
    """Group commit on a writer thread, for the asyncio event loop that serves the requests.

    The loop only queues: :meth:`submit` returns a future (:meth:`store_then` takes a
    callback instead, which a listener under load prefers), and the requests
    submitted during one turn of the loop go to the writer thread as one group,
    committed in one transaction. Requests submitted while that commit runs form
    the next group, handed over once it is done (and :data:`GROUP_INTERVAL_SECONDS`
    after the last). Only after the commit are the group's callers told, so an answer
    never goes out before its row is durable.

    Why a thread: SQLite may wait, and the loop must not. Another process may
    hold the write lock for seconds (``mhw events clear``, a ``sqlite3`` shell);
    meanwhile only the answers that need this commit wait, while the loop goes
    on parsing, refusing and answering everything else. What keeps it cheap is
    one hand-off per group, not per request: one queue put to wake the writer,
    one ``call_soon_threadsafe`` to wake the loop with every receipt of the group,
    which goes to each request's callback there and then.

    The writer thread is the only user of the store's connection until
    :meth:`close`. One row that cannot be stored does not fail its group: the
    group is then stored row by row, and only that row's future fails.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._requests: list[tuple[Received, OnStored]] = []
        self._forwards: list[_Forwards] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = False
        """A group is with the writer, or about to be: what is submitted meanwhile waits."""
        self._handed_at = float("-inf")
        """The loop's time when the last group went to the writer."""
        self._closed = False
        """:meth:`close` began: nothing more is taken, and the last group stops the writer."""
        self._groups: queue.SimpleQueue[_Group | None] = queue.SimpleQueue()
        self._checkpointer = _Checkpointer(store)
        self._writer = threading.Thread(target=self._write, name="mhw-store-writer", daemon=True)
        self._writer.start()

    def submit(self, request: Received) -> asyncio.Future[Receipt]:
        """A future resolved with the row's receipt once ``request`` is committed.

        It fails with :class:`StoreError` when the row cannot be stored (disk
        full, I/O error, the lock held by another process for longer than
        :data:`BUSY_TIMEOUT_SECONDS`): the listener then answers 500 and the
        sender retries. It fails with :class:`StoreClosed` once :meth:`close` began.
        """
        committed: asyncio.Future[Receipt] = self._running_loop().create_future()
        self.store_then(request, partial(_resolve, committed))
        return committed

    def store_then(self, request: Received, on_stored: OnStored) -> None:
        """:meth:`submit` without a future: ``on_stored`` is called on the loop with the
        row's receipt, or the exception a future would hold (never from inside this call).

        A future costs its callback a turn of the loop on top of its own upkeep, about a
        microsecond a request for a listener's answer; this is how it answers.
        """
        if self._closed:
            self._running_loop().call_soon(on_stored, self._closing())
            return
        self._group_soon()
        self._requests.append((request, on_stored))

    def record_forwards(
        self, request_id: int, results: Sequence[ForwardResult]
    ) -> asyncio.Future[None]:
        """A future resolved once what forwarding one request did is stored with it."""
        stored: asyncio.Future[None] = self._running_loop().create_future()
        if self._closed:
            stored.set_exception(self._closing())
            return stored
        self._group_soon()
        self._forwards.append((request_id, results, stored))
        return stored

    async def close(self) -> None:
        """Commit what was submitted, then stop the writer thread (joined off the loop).

        What is submitted from now on fails with :class:`StoreClosed`, and so does what
        waits for another connection's write lock, at once: a listener answers those
        503 and their senders retry. Waiting out :data:`BUSY_TIMEOUT_SECONDS` for each
        group (on the loop) once made a SIGTERM take 9.6 s.
        """
        import asyncio

        self._closed = True
        self.store.give_up_waiting()
        if not self._in_flight:
            self._groups.put(None)  # else _written stops the writer after the last group
        await asyncio.get_running_loop().run_in_executor(None, self._writer.join)
        await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.close)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            import asyncio

            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _group_soon(self) -> None:
        """Something is about to be queued: hand its group over soon, unless one is out."""
        if not self._in_flight:
            loop = self._running_loop()
            self._in_flight = True
            # After one more turn of the loop, so that the requests read in it join the group
            # too: a commit costs about the same whatever its size, and groups grow from ~16
            # requests to ~30 under bench/listen.py's load (+6-10% requests/s, alternated
            # with the code before; unloaded, the extra turn takes microseconds).
            loop.call_soon(loop.call_soon, self._dispatch)

    def _closing(self) -> StoreClosed:
        return StoreClosed(f"capture store {self.store.path} is closing")

    def _dispatch(self) -> None:
        """Hand what is pending to the writer, as one group (on the loop)."""
        self._handed_at = self._running_loop().time()
        group = _Group(self._requests, self._forwards)
        self._requests, self._forwards = [], []
        self._groups.put(group)

    def _write(self) -> None:
        """The writer thread: commit each group, then hand its outcomes back to the loop."""
        while (group := self._groups.get()) is not None:
            group.receipts = self._store_requests([request for request, _ in group.requests])
            if group.forwards:
                group.forwards_failure = self._store_forwards(group.forwards)
            assert self._loop is not None  # a group exists only once something was submitted
            # RuntimeError: the loop is closed, so nobody waits for an answer any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._written, group)
            self._checkpointer.nudge()

    def _store_requests(self, requests: list[Received]) -> list[_Outcome]:
        """One outcome per request: its receipt, or why it could not be stored."""
        if not requests:
            return []
        try:
            return list(self.store.add_many(requests))
        except Exception as failure:  # whatever it is, every waiting sender must hear of it
            if len(requests) == 1 or _waited_for_the_lock(failure):
                # Row by row, every row would wait for the lock again, in vain.
                return [failure] * len(requests)
        return [self._store_one(request) for request in requests]

    def _store_one(self, request: Received) -> _Outcome:
        try:
            return self.store.add_many([request])[0]
        except Exception as failure:  # it fails this request alone
            return failure

    def _store_forwards(self, forwards: list[_Forwards]) -> Exception | None:
        try:
            self.store.add_forwards(
                [(request_id, result) for request_id, results, _ in forwards for result in results]
            )
        except Exception as failure:  # handed to the forwards' futures
            return failure
        return None

    def _written(self, group: _Group) -> None:
        """Tell a committed group's callers, and hand the next group over (on the loop)."""
        for (_, on_stored), outcome in zip(group.requests, group.receipts, strict=True):
            try:
                on_stored(outcome)
            except Exception as bug:  # the caller's: the group's other callers still hear
                self._running_loop().call_exception_handler(
                    {"message": "a store_then callback failed", "exception": bug}
                )
        failure = group.forwards_failure
        for _, _, stored in group.forwards:
            if not stored.done():
                if failure is None:
                    stored.set_result(None)
                else:
                    stored.set_exception(failure)
        if self._requests or self._forwards:
            self._running_loop().call_at(self._handed_at + GROUP_INTERVAL_SECONDS, self._dispatch)
        elif self._closed:
            self._groups.put(None)
        else:
            self._in_flight = False


class _Checkpointer:
    """Copies a listener's WAL into the database on its own thread and connection.

    SQLite checkpoints in the commit that takes the WAL past 1,000 pages, and with
    ``synchronous=NORMAL`` that checkpoint syncs the database file: as the store grew
    past 100k rows (the retry index makes each row a page of WAL), a group commit
    now and then took 200-400 ms, and every answer of its group and of the groups
    queued behind it waited (p99 228-516 ms under load). Here a passive checkpoint
    runs after commits, off the writer, never waiting for it; the writer does one in
    line only at :data:`INLINE_CHECKPOINT_BYTES`, which also lets the WAL start over
    when a flood never pauses (a checkpoint running beside the writer cannot catch up
    with it, and a WAL only starts over once one has).
    """

    def __init__(self, store: Store) -> None:
        (page_bytes,) = store._connection.execute("PRAGMA page_size").fetchone()
        pages = INLINE_CHECKPOINT_BYTES // page_bytes  # a store from before 16 KB pages: 4 KB
        store._connection.execute(f"PRAGMA wal_autocheckpoint = {pages}")
        store._connection.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        try:  # used only by the thread below, then closed by close() after joining it
            self._connection = sqlite3.connect(
                store.path, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as failure:
            raise StoreError(f"capture store {store.path}: {failure}") from failure
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="mhw-store-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Something was committed: checkpoint soon (from any thread)."""
        self._wanted.set()

    def close(self) -> None:
        """Stop the thread (blocks for at most one checkpoint)."""
        self._stopping = True
        self._wanted.set()
        self._thread.join()
        self._connection.close()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._stopping:
                return
            self._wanted.clear()
            # PASSIVE: copies what no reader still needs, waits for nobody. A checkpoint that
            # fails loses nothing (the WAL keeps every commit): the next one tries again.
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            time.sleep(CHECKPOINT_PAUSE_SECONDS)


class Receipt(NamedTuple):
    """What storing a request gave it: its id, and the first delivery it repeats."""

    id: int
    retry_of: int | None


_Row = tuple[Any, ...]
_Outcome = Receipt | Exception
"""What storing one request came to."""
OnStored = Callable[[_Outcome], None]
"""Told on the loop how storing one request came out (see :meth:`GroupCommitter.store_then`)."""
_Forwards = tuple[int, Sequence[ForwardResult], "asyncio.Future[None]"]
"""A request's id, what forwarding it did, and the future resolved once that is stored."""


@dataclass(eq=False)
class _Group:
    """What one transaction of the writer stores, and what came of it."""

    requests: list[tuple[Received, OnStored]]
    forwards: list[_Forwards]
    receipts: list[_Outcome] = field(default_factory=list)
    forwards_failure: Exception | None = None


def _resolve(future: asyncio.Future[Receipt], outcome: _Outcome) -> None:
    if future.done():  # a caller that gave up: its row is stored all the same
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _time_order(row: StoredRow) -> tuple[float, int]:
    return row.received_at, row.id


def _waited_for_the_lock(failure: Exception) -> bool:
    """Whether storing failed because another connection held the write lock too long, or
    while closing: then every row would fail alike."""
    if isinstance(failure, StoreClosed):
        return True
    return isinstance(failure.__cause__, sqlite3.Error) and _is_busy(failure.__cause__)


def _is_busy(failure: sqlite3.Error) -> bool:
    """SQLITE_BUSY: another connection holds the lock (the message of every Python version)."""
    return str(failure) == "database is locked"


class _transaction:
    """``BEGIN IMMEDIATE`` (take the write lock now, or wait for it) ... ``COMMIT``/``ROLLBACK``."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        begin: str = "BEGIN IMMEDIATE",
        give_up: threading.Event | None = None,
    ) -> None:
        self._connection = connection
        self._begin = begin
        self._give_up = give_up

    def __enter__(self) -> None:
        if self._begin == "BEGIN IMMEDIATE":
            _take_write_lock(self._connection, self._give_up)
        else:
            self._connection.execute(self._begin)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self._connection.execute("COMMIT")
        elif self._connection.in_transaction:
            self._connection.execute("ROLLBACK")


def _take_write_lock(connection: sqlite3.Connection, give_up: threading.Event | None) -> None:
    """``BEGIN IMMEDIATE``, trying again every millisecond for up to :data:`BUSY_TIMEOUT_SECONDS`,
    or until ``give_up`` is set (then :class:`StoreClosed`).

    Not with SQLite's busy handler: it backs off to one try every 100 ms, so a
    listener waiting behind :meth:`Store.clear`'s short batches kept missing the
    pauses between them (waits of 172 ms measured with ``bench/store_clear.py``).
    Reads keep the handler, for the rare moments a WAL reader meets a lock.
    Switching the handler off and on costs ~3 µs, once per transaction.
    """
    connection.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as failure:
                if not _is_busy(failure) or time.monotonic() >= deadline:
                    raise
            if give_up is None:
                time.sleep(LOCK_POLL_SECONDS)
            elif give_up.wait(LOCK_POLL_SECONDS):
                raise StoreClosed("mhw is stopping: gave up waiting for another's write lock")
    finally:
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")


def _connect(path: Path) -> sqlite3.Connection:
    """A connection configured for the store, creating the file (0600) and schema if missing.

    Autocommit mode (``isolation_level=None``): transactions are begun
    explicitly, so a reader never holds a snapshot longer than its query.
    """
    _create_private_file(path)
    try:
        # check_same_thread=False: mhw listen opens it on the loop's thread and then uses it
        # only on GroupCommitter's writer thread; no two threads ever use it at once.
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as failure:
        raise StoreError(f"cannot open capture store {path}: {failure}") from failure
    try:
        # Only a new, empty file takes it (WAL mode fixes the size of an existing one).
        connection.execute(f"PRAGMA page_size = {SQLITE_PAGE_BYTES}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        _migrate(connection, path)
    except sqlite3.Error as failure:
        connection.close()
        raise StoreError(f"cannot open capture store {path}: {failure}") from failure
    except StoreError:
        connection.close()
        raise
    return connection


def _create_private_file(path: Path) -> None:
    """Create the directory (0700) and an empty file (0600) before SQLite does.

    SQLite would create the file 0644 under the usual umask, and it gives the
    ``-wal`` and ``-shm`` files the database file's mode, so fixing the mode of
    this one file keeps all three private. An existing file is left as it is.
    """
    if path.exists():
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as failure:
        raise StoreError(f"cannot create capture store {path}: {failure.strerror}") from None
    try:
        os.fchmod(descriptor, 0o600)  # umask-proof
    finally:
        os.close(descriptor)


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    """Run the migrations this file has not run, in order, recording each one's name;
    refuse a file written by a newer mhw."""
    version = _schema_version(connection, path)
    if version == SCHEMA_VERSION:
        return  # the usual case takes no write lock, so readers never wait for the listener
    if version > 0:
        _refuse_while_an_older_listener_writes(path)
    with _transaction(connection):
        # Read again under the write lock: another process may have migrated meanwhile.
        version = _schema_version(connection, path)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS mhw_migrations (name TEXT PRIMARY KEY, applied_at REAL)"
        )
        applied = {name for (name,) in connection.execute("SELECT name FROM mhw_migrations")}
        unknown = applied - {migration.__name__ for migration in MIGRATIONS}
        if unknown:
            raise StoreError(
                f"capture store {path} has run migrations this mhw does not know "
                f"({', '.join(sorted(unknown))}): upgrade mhw or use another --store"
            )
        # A store from before the names were recorded counted its migrations in user_version
        # (when they ran is not known).
        connection.executemany(
            "INSERT OR IGNORE INTO mhw_migrations (name, applied_at) VALUES (?, NULL)",
            [(migration.__name__,) for migration in MIGRATIONS[:version]],
        )
        for migration in MIGRATIONS[version:]:
            if migration.__name__ not in applied:
                migration(connection)
                connection.execute(
                    "INSERT INTO mhw_migrations (name, applied_at) VALUES (?, ?)",
                    (migration.__name__, time.time()),
                )
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _refuse_while_an_older_listener_writes(path: Path) -> None:
    """A listener that runs on a store of an older schema is an older mhw: its inserts name
    the indexes of that schema, and a migration under it would make every one fail (each
    webhook answered 500 until it restarts). Its registry entry names the store."""
    from mh_webhook_cli.receive.registry import running_listeners

    here = path.resolve()
    for listener in running_listeners():
        if (
            listener.pid != os.getpid()
            and listener.store
            and Path(listener.store).resolve() == here
        ):
            raise StoreError(
                f"capture store {path} is in use by an older mhw listen (pid {listener.pid}): "
                "stop it, then run this again (the store is upgraded when next opened)"
            )


def _schema_version(connection: sqlite3.Connection, path: Path) -> int:
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"capture store {path} has schema version {version}, newer than this mhw's "
            f"{SCHEMA_VERSION}: upgrade mhw or use another --store"
        )
    return version


def _row(request: Received) -> _Row:
    """The request as insert parameters ``?1`` to ``?12``; raises on findings that are not JSON.

    The body is stored as received. Only the event type and project id, read from the
    body's JSON, can hold a lone surrogate (``{"type":"\\ud800"}`` is valid JSON), which
    SQLite cannot take as TEXT: they are stored with it escaped. Two different strings
    may then look alike in a column (a sender may also write the six characters
    ``\\ud800``); nothing is lost, since the body keeps the exact bytes. The other text
    columns cannot hold one: the server decodes the method, target and headers as
    latin-1, the client is an address, and :func:`dumps` escapes lone surrogates.
    """
    digest = hashlib.sha256(request.body).digest()
    event_type, project_id = request.event_type, request.project_id
    return (
        request.received_at,
        request.method,
        request.target,
        dumps(request.headers),
        request.body,
        int.from_bytes(digest[:8], "big", signed=True),
        request.client,
        None if event_type is None else escape_lone_surrogates(event_type),
        None if project_id is None else escape_lone_surrogates(project_id),
        request.verification,
        dumps(request.findings),
        request.answer,
    )


def _insert_requests(connection: sqlite3.Connection, rows: Sequence[_Row]) -> list[Receipt]:
    """Insert ``rows`` in the open write transaction; their receipts, in order.

    ``executemany`` does not report ids, but AUTOINCREMENT makes every new id
    larger than any before it, and no other connection can insert while this
    transaction holds the write lock: the ids above the previous largest are
    exactly the new rows, in insertion order.
    """
    if not rows:
        return []
    (before,) = connection.execute("SELECT coalesce(max(id), 0) FROM requests").fetchone()
    connection.executemany(_INSERT, rows)
    receipts = [
        Receipt(row_id, retry_of)
        for row_id, retry_of in connection.execute(
            "SELECT id, retry_of FROM requests WHERE id > ? ORDER BY id", (before,)
        )
    ]
    if len(receipts) != len(rows):
        raise sqlite3.IntegrityError(f"inserted {len(rows)} rows but found {len(receipts)} new ids")
    return receipts


def _stored(row: StoredRow) -> Received:
    """A row read into a :class:`~mh_webhook_cli.core.request.Received`: the one place that
    maps a row to a request.

    Raises :class:`StoreError` for a row that another program wrote in another shape.
    """
    try:
        return Received.of(
            row.received_at,
            row.method,
            row.path,
            [(name, value) for name, value in json.loads(row.headers)],
            bytes(row.body),
            row.client,
            row.event_type,
            row.project_id,
            row.verification,
            json.loads(row.findings),
            row.response_status,
            id=row.id,
            retry_of=row.retry_of,
            forwards=json.loads(row.forwards),
        )
    except (TypeError, ValueError) as failure:
        raise StoreError(f"a stored request is not as mhw writes it: {failure}") from failure
