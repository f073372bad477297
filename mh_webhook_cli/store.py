"""The capture store: every webhook request ``mhw listen`` receives, in one SQLite file.

The listener must never lose a request, so a request is committed here before
its HTTP answer is sent. Committing one transaction per request would cap the
listener at the disk's commit rate; :class:`GroupCommitter` instead commits
the requests of one event-loop turn in one transaction and only then resolves
each request's future, so an answer still never goes out before its row is durable.

The file is opened in WAL mode: ``mhw events`` in other processes read a
consistent snapshot while the listener writes, and a writer killed mid-burst
(SIGKILL) leaves every committed transaction intact and the rest rolled back.
``synchronous=NORMAL`` survives a process crash (what SIGKILL is); only a power
loss can drop the last few commits, which a developer tool can accept for the
throughput it buys.

Request bodies and headers can be sensitive, so the file is created 0600 in a
directory created 0700. This module is the only one that imports sqlite3.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, NamedTuple, ParamSpec, TypedDict, TypeVar

from mh_webhook_cli.errors import ExitCode, MhwError
from mh_webhook_cli.json_text import dumps

if TYPE_CHECKING:
    import asyncio

STORE_ENV = "MHW_STORE"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 5.0
"""How long a connection waits for another one's write lock before failing."""

_SCHEMA = (
    # AUTOINCREMENT: ids are never reused after 'mhw events clear', so an id
    # someone wrote down never silently points at another request.
    """CREATE TABLE IF NOT EXISTS requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at REAL NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        -- The first 8 bytes of the body's SHA-256: finds retries, and its index stays small.
        body_hash INTEGER NOT NULL,
        client TEXT NOT NULL,
        event_type TEXT,
        project_id TEXT,
        verification TEXT NOT NULL,
        findings TEXT NOT NULL,
        response_status INTEGER NOT NULL,
        retry_of INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS requests_received_at ON requests (received_at)",
    "CREATE INDEX IF NOT EXISTS requests_event_type ON requests (event_type)",
    "CREATE INDEX IF NOT EXISTS requests_body_hash ON requests (body_hash)",
    """CREATE TABLE IF NOT EXISTS forwards (
        id INTEGER PRIMARY KEY,
        request_id INTEGER NOT NULL,
        result TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS forwards_request_id ON forwards (request_id)",
)

_INSERT = """
INSERT INTO requests (
    received_at, method, path, headers, body, body_hash, client, event_type,
    project_id, verification, findings, response_status, retry_of
) VALUES (
    ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
    -- A retry is a later delivery of the same event: same type, project and bytes.
    -- ORDER BY id LIMIT 1 reads one entry; min(id) would read every equal body, per insert.
    (SELECT id FROM requests
     WHERE body_hash = ?6 AND event_type = ?8 AND project_id IS ?9 AND body = ?5
     ORDER BY id LIMIT 1)
)
"""
_INSERT_FORWARD = "INSERT INTO forwards (request_id, result) VALUES (?, ?)"
# Every query below is put together from these constants, never from input: hence the noqa S608.
_COLUMNS = (
    "id, received_at, method, path, headers, body, client, event_type, project_id, "
    "verification, findings, response_status, retry_of"
)
_INVALID = "(verification != 'ok' OR findings != '[]')"

Finding = dict[str, str]
"""A schema finding as stored: ``{"path", "code", "message"}``."""


class ForwardResult(TypedDict):
    """What happened when the listener forwarded a request to a handler."""

    target: str
    status: int | None
    latency_ms: float | None
    error: str | None
    body: str | None


class StoreError(MhwError):
    """The capture store cannot be opened, read or written; the message names the file."""

    exit_code = ExitCode.USAGE  # a path that is not a usable store is bad input


@dataclass
class NewRequest:
    """One request as the listener received and judged it, before it is stored.

    Treat it as read-only; not frozen only because that makes ``__init__`` two
    microseconds slower, and a listener builds one per request.
    """

    received_at: float
    """Unix seconds."""
    method: str
    path: str
    """The request target as received, query string included."""
    headers: list[tuple[str, str]]
    """In the order received, repeated headers kept."""
    body: bytes
    """Exactly the bytes received (de-chunked): what a signature covers."""
    client: str
    """``ip:port`` of the sender."""
    event_type: str | None
    project_id: str | None
    verification: str
    """A :class:`~mh_webhook_cli.signing.Reason` value, ``unsigned`` or ``unchecked``."""
    findings: list[Finding]
    response_status: int
    """The status the listener answered with."""

    @property
    def valid(self) -> bool:
        """Signed correctly and matching the schema: what ``--invalid`` leaves out."""
        return self.verification == "ok" and not self.findings


@dataclass
class StoredRequest(NewRequest):
    """A request as read back from the store."""

    id: int
    forwards: list[ForwardResult] = field(default_factory=list)
    retry_of: int | None = None
    """The id of the first stored delivery of the same event, when this one is a retry."""


def default_store_path() -> Path:
    """``$MHW_STORE``, else ``events.sqlite3`` in mhw's user data directory."""
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser()
    from platformdirs import user_data_path

    return user_data_path("mhw", appauthor=False) / "events.sqlite3"


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
    """One connection to the store, for one thread: the listener's side jobs and ``mhw events``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = _connect(path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @_reported
    def add_many(self, requests: Sequence[NewRequest]) -> builtins.list[Receipt]:
        """Store ``requests`` in one transaction (a group commit); their receipts, in order."""
        rows = [_row(request) for request in requests]
        with _transaction(self._connection):
            return _insert_requests(self._connection, rows)

    def add(self, request: NewRequest) -> int:
        return self.add_many([request])[0].id

    @_reported
    def record_forward(self, request_id: int, result: ForwardResult) -> None:
        """Attach what forwarding a request did; it happens after the answer, so separately."""
        row = _forward_row(request_id, result)
        with _transaction(self._connection):
            self._connection.execute(_INSERT_FORWARD, row)

    def get(self, request_id: int) -> StoredRequest | None:
        found = self._select(f"SELECT {_COLUMNS} FROM requests WHERE id = ?", (request_id,))  # noqa: S608
        return found[0] if found else None

    def list(
        self,
        *,
        event_glob: str | None = None,
        since: float | None = None,
        invalid_only: bool = False,
        limit: int | None = None,
    ) -> builtins.list[StoredRequest]:
        """Requests newest first; ``event_glob`` matches like :func:`fnmatch.fnmatchcase`."""
        conditions: list[str] = []
        parameters: list[Any] = []
        if event_glob is not None:
            # SQLite's GLOB is fnmatch's language except that it negates with ^ instead of !.
            conditions.append("event_type GLOB ?")
            parameters.append(event_glob.replace("[!", "[^"))
        if since is not None:
            conditions.append("received_at >= ?")
            parameters.append(since)
        if invalid_only:
            conditions.append(_INVALID)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT {_COLUMNS} FROM requests {where} ORDER BY received_at DESC, id DESC"  # noqa: S608
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(limit)
        return self._select(sql, parameters)

    def iter_oldest_first(self, page_size: int = 500) -> Iterator[StoredRequest]:
        """Every request, oldest first, a page at a time: an export never holds the whole store."""
        after: tuple[float, int] = (float("-inf"), 0)
        while True:
            page = self._select(
                f"SELECT {_COLUMNS} FROM requests WHERE (received_at, id) > (?, ?) "  # noqa: S608
                "ORDER BY received_at, id LIMIT ?",
                (*after, page_size),
            )
            yield from page
            if len(page) < page_size:
                return
            after = (page[-1].received_at, page[-1].id)

    @_reported
    def count(self) -> int:
        return int(self._connection.execute("SELECT count(*) FROM requests").fetchone()[0])

    @_reported
    def clear(self) -> int:
        """Delete every request and its forward results; how many requests there were."""
        with _transaction(self._connection):
            self._connection.execute("DELETE FROM forwards")
            return self._connection.execute("DELETE FROM requests").rowcount

    def close(self) -> None:
        self._connection.close()

    @_reported
    def _select(self, sql: str, parameters: Sequence[Any]) -> builtins.list[StoredRequest]:
        # One read transaction, so the forwards belong to the same snapshot as the requests.
        with _transaction(self._connection, "BEGIN"):
            rows = self._connection.execute(sql, parameters).fetchall()
            forwards: dict[int, builtins.list[ForwardResult]] = {}
            ids = [row[0] for row in rows]
            # Chunks stay under SQLite's limit on the number of parameters in one statement.
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                for request_id, result in self._connection.execute(
                    f"SELECT request_id, result FROM forwards WHERE request_id IN ({marks}) "  # noqa: S608
                    "ORDER BY id",
                    chunk,
                ):
                    forwards.setdefault(request_id, []).append(json.loads(result))
        return [_stored(row, forwards.get(row[0], [])) for row in rows]


class GroupCommitter:
    """Group commit inside the asyncio event loop that serves the requests.

    Every request submitted during two turns of the loop goes into one
    transaction at the end of them; only after the commit are their futures
    resolved, so an answer never goes out before its row is durable.

    Why not a writer thread: measured with ``bench/listen.py`` (the server on
    one core), a thread costs a GIL hand-off and a wake-up of the loop for every
    group, and gained nothing; SQLite commits a few dozen small rows in about a
    millisecond, during which the loop would only have waited for it anyway.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: builtins.list[tuple[NewRequest, asyncio.Future[Receipt]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit(self, request: NewRequest) -> asyncio.Future[Receipt]:
        """A future resolved with the row's receipt once ``request`` is committed.

        It fails with :class:`StoreError` when the commit fails (disk full, I/O
        error): the listener then answers 500 and the sender retries.
        """
        if not self._pending or self._loop is None:
            self._loop = self._start_group()
        committed: asyncio.Future[Receipt] = self._loop.create_future()
        self._pending.append((request, committed))
        return committed

    def _start_group(self) -> asyncio.AbstractEventLoop:
        import asyncio

        # Asked once a group, not per request: on Python 3.11 it makes a system call.
        loop = asyncio.get_running_loop()
        # Committed after one more turn of the loop, so that the requests read in that turn
        # join the group: a commit costs ~85 µs whatever its size, and under bench/listen.py's
        # load groups grow from ~14 requests to ~24. Unloaded, the extra turn takes microseconds.
        loop.call_soon(loop.call_soon, self._commit)
        return loop

    def flush(self) -> None:
        """Commit what is pending now (at shutdown, before the store closes)."""
        self._commit()

    def _commit(self) -> None:
        group, self._pending = self._pending, []
        if not group:
            return
        try:
            receipts = self.store.add_many([request for request, _ in group])
        except Exception as failure:  # whatever it is, every waiting sender must hear of it
            for _, committed in group:
                if not committed.done():
                    committed.set_exception(failure)
            return
        for (_, committed), receipt in zip(group, receipts, strict=True):
            if not committed.done():  # a caller that gave up: its row is stored all the same
                committed.set_result(receipt)


class Receipt(NamedTuple):
    """What storing a request gave it: its id, and the first delivery it repeats."""

    id: int
    retry_of: int | None


_Row = tuple[Any, ...]


class _transaction:
    """``BEGIN IMMEDIATE`` (take the write lock now, or wait for it) ... ``COMMIT``/``ROLLBACK``."""

    def __init__(self, connection: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> None:
        self._connection = connection
        self._begin = begin

    def __enter__(self) -> None:
        self._connection.execute(self._begin)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self._connection.execute("COMMIT")
        elif self._connection.in_transaction:
            self._connection.execute("ROLLBACK")


def _connect(path: Path) -> sqlite3.Connection:
    """A connection configured for the store, creating the file (0600) and schema if missing.

    Autocommit mode (``isolation_level=None``): transactions are begun
    explicitly, so a reader never holds a snapshot longer than its query.
    """
    _create_private_file(path)
    try:
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as failure:
        raise StoreError(f"cannot open capture store {path}: {failure}") from failure
    try:
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
    """Create the schema once; refuse a file written by a newer mhw instead of damaging it."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return  # the usual case takes no write lock, so readers never wait for the listener
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"capture store {path} has schema version {version}, newer than this mhw's "
            f"{SCHEMA_VERSION}: upgrade mhw or use another --store"
        )
    with _transaction(connection):
        for statement in _SCHEMA:
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _row(request: NewRequest) -> _Row:
    """The request as insert parameters ``?1`` to ``?12``; raises on findings that are not JSON."""
    digest = hashlib.sha256(request.body).digest()
    return (
        request.received_at,
        request.method,
        request.path,
        dumps(request.headers),
        request.body,
        int.from_bytes(digest[:8], "big", signed=True),
        request.client,
        request.event_type,
        request.project_id,
        request.verification,
        dumps(request.findings),
        request.response_status,
    )


def _forward_row(request_id: int, result: ForwardResult) -> _Row:
    return request_id, dumps(result)


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


def _stored(row: tuple[Any, ...], forwards: list[ForwardResult]) -> StoredRequest:
    (row_id, received_at, method, path, headers, body, client, event_type, project_id) = row[:9]
    verification, findings, response_status, retry_of = row[9:]
    return StoredRequest(
        id=row_id,
        received_at=received_at,
        method=method,
        path=path,
        headers=[(name, value) for name, value in json.loads(headers)],
        body=bytes(body),
        client=client,
        event_type=event_type,
        project_id=project_id,
        verification=verification,
        findings=json.loads(findings),
        response_status=response_status,
        forwards=forwards,
        retry_of=retry_of,
    )
