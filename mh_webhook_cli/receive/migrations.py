"""The capture store's schema, as an ordered list of named migrations (as llm's migrations.py).

Each migration is a function, applied once, in order, and recorded by its name in
the store's ``mhw_migrations`` table with the time it ran; ``PRAGMA user_version``
holds how many have run, so that opening an up-to-date store costs one pragma and
no write lock, and a store written by a newer mhw (more than this list, or a name
it does not know) is refused instead of misread. Opening a store runs the missing
ones in one transaction (:func:`mh_webhook_cli.receive.store._migrate`).

A migration is never edited or renamed once released (a store out there has run it
as it was): a change is a new function at the end of :data:`MIGRATIONS`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def create_tables(connection: sqlite3.Connection) -> None:
    """Version 1: the requests and the results of forwarding them."""
    # AUTOINCREMENT: ids are never reused after 'mhw events clear', so an id
    # someone wrote down never silently points at another request.
    connection.execute(
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
        )"""
    )
    connection.execute("CREATE INDEX IF NOT EXISTS requests_received_at ON requests (received_at)")
    connection.execute("CREATE INDEX IF NOT EXISTS requests_event_type ON requests (event_type)")
    connection.execute("CREATE INDEX IF NOT EXISTS requests_body_hash ON requests (body_hash)")
    connection.execute(
        """CREATE TABLE IF NOT EXISTS forwards (
            id INTEGER PRIMARY KEY,
            request_id INTEGER NOT NULL,
            result TEXT NOT NULL
        )"""
    )
    connection.execute("CREATE INDEX IF NOT EXISTS forwards_request_id ON forwards (request_id)")


def index_retry_lookup(connection: sqlite3.Connection) -> None:
    """Version 2: index exactly what retry detection looks up, and only events.

    Version 1 found earlier deliveries through an index on ``body_hash`` alone,
    then compared each entry's event type: 50,000 identical bodies meant 50,000
    comparisons per insert (125 inserts/s), and bodies without an event type,
    which never match, always walked them all. With the type and project in the
    key, the first entry found is the answer. Only events are indexed, since a
    body without an event type is never a retry (see ``store._INSERT``): a
    flood of ``{}`` adds nothing to this index.
    """
    connection.execute("DROP INDEX IF EXISTS requests_body_hash")
    connection.execute(
        "CREATE INDEX IF NOT EXISTS requests_retry "
        "ON requests (body_hash, event_type, project_id) WHERE event_type IS NOT NULL"
    )


def index_filters(connection: sqlite3.Connection) -> None:
    """Version 3: the filters of ``mhw events list`` read only what they show.

    ``--invalid`` scanned every row (817 ms at a million) and ``--type`` read its
    event's rows in id order, then sorted them by time. Now ``--type`` walks
    ``(event_type, received_at)`` newest first, and ``--invalid`` a partial index
    of only the invalid rows (its WHERE is ``store._INVALID``, word for word, which
    is how SQLite knows a query may use it). The index on ``event_type`` alone is
    the new one's prefix, so it goes.
    """
    connection.execute("DROP INDEX IF EXISTS requests_event_type")
    connection.execute(
        "CREATE INDEX IF NOT EXISTS requests_type_received ON requests (event_type, received_at)"
    )
    connection.execute(
        "CREATE INDEX IF NOT EXISTS requests_invalid ON requests (received_at) "
        "WHERE (verification != 'ok' OR findings != '[]')"
    )


def shrink_retry_index(connection: sqlite3.Connection) -> None:
    """Version 4: the retry lookup keyed by the body's hash alone (66 -> 21 bytes an event).

    The listener reads the event type and project id from the body, so equal bodies
    have equal types and projects: the first entry of a hash is the answer, and the
    insert still checks type, project and bytes on that row. A body without an event
    type stays out of the index, so a flood of ``{}`` still walks nothing.
    """
    connection.execute("DROP INDEX IF EXISTS requests_retry")
    connection.execute(
        "CREATE INDEX requests_retry ON requests (body_hash) WHERE event_type IS NOT NULL"
    )


def index_projects(connection: sqlite3.Connection) -> None:
    """Version 5: find a project's requests, and retries, through its id.

    ``mhw events list --project`` reads only that project's rows. The retry lookup
    moves to the same index: keyed by the body's hash alone, each insert touched a
    random page of it (hashes are random), so once the store outgrew the cache every
    commit wrote one page of WAL per request. Magic Hour's project ids begin with
    their creation time (cuids), so new entries land at the end of this index, as
    they do in the time indexes. The hash in the key keeps the lookup at one entry
    even when a sender floods one project id with distinct bodies. Events without a
    project id keep a hash index of their own (WHERE as in ``store._INSERT``).
    """
    connection.execute(
        "CREATE INDEX requests_project ON requests (project_id, body_hash) "
        "WHERE project_id IS NOT NULL"
    )
    connection.execute("DROP INDEX IF EXISTS requests_retry")
    connection.execute(
        "CREATE INDEX requests_retry ON requests (body_hash) "
        "WHERE event_type IS NOT NULL AND project_id IS NULL"
    )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    create_tables,
    index_retry_lookup,
    index_filters,
    shrink_retry_index,
    index_projects,
)
"""In the order they run; each one's ``__name__`` is what a store records."""
SCHEMA_VERSION = len(MIGRATIONS)
