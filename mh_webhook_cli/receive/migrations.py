"""The capture store's schema, as an ordered list of migrations.

``PRAGMA user_version`` records how many of :data:`MIGRATIONS` a store file has
run; opening it runs the rest, in order, in one transaction. A migration is
never edited once released (a store out there has run it as it was): a change
is a new function at the end of the list.
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


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    create_tables,
    index_retry_lookup,
)
SCHEMA_VERSION = len(MIGRATIONS)
